"""`pollwatch alerts ...`: check Slack credentials, look into the outbox, deliver it now.

Credentials come from POLLWATCH_SLACK_BOT_TOKEN / POLLWATCH_SLACK_WEBHOOK_URL, or with
`--blocks` from the Prefect Secret blocks the flows use. Secrets are never printed.
"""

from __future__ import annotations

import json

from typing import Annotated

import typer

from pollwatch.cli.common import WatchArg, echo, fail, option_watch, quiet_prefect

app = typer.Typer(
    help="Slack alerts: check credentials, inspect and deliver the outbox (docs/alerts.md).", no_args_is_help=True
)

Blocks = Annotated[
    bool,
    typer.Option(
        "--blocks", help="Read credentials from Prefect Secret blocks (slack-bot-token, slack-webhook-url) first."
    ),
]


def _transport(blocks: bool):  # type: ignore[no-untyped-def]
    from pollwatch.notify import choose_transport
    from pollwatch.settings import get_settings

    settings = get_settings()
    token, webhook = settings.slack_bot_token, settings.slack_webhook_url
    if blocks:
        quiet_prefect()
        from pollwatch.tasks.notify import slack_credentials

        token, webhook = slack_credentials()
    return choose_transport(token, webhook, base_url=settings.slack_base_url)


@app.command("check")
def check(
    watch: WatchArg,
    blocks: Blocks = False,
) -> None:
    """Check that the credentials work and the bot can post to the watch's alert and ops channels."""
    from pollwatch.notify import DeliveryError, SlackTransport

    w = option_watch(watch)
    t = _transport(blocks)
    typer.echo(f"transport: {t.name}")
    if not isinstance(t, SlackTransport):
        typer.echo(
            "no bot token: threads, edits, charts and exactly-once look-ups are unavailable"
            + ("" if t.name == "webhook" else "; alerts go to the console")
        )
        return
    try:
        who = t.check()
        typer.echo(f"bot: {who.get('user')} ({who.get('user_id')}) in {who.get('team')} ({who.get('team_id')})")
        for label, channel in (("alerts", w.alerts.channel), ("ops", w.alerts.ops_channel)):
            typer.echo(f"{label} channel {channel}: {t.channel_id(channel)}")
    except DeliveryError as exc:
        fail(f"Slack check failed: {exc}")


@app.command("outbox")
def outbox(
    watch: WatchArg,
    pending: Annotated[bool, typer.Option("--pending", help="Only alerts not delivered yet.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the watch's alerts with their delivery state, attempts and Slack reference."""
    from pollwatch import store
    from pollwatch.models import iso

    w = option_watch(watch)
    with store.session_scope() as s:
        rows = [r for r in store.alert_rows(s, watch=w.name) if not pending or r.state != "sent"]
    items = [
        {
            "created_at": iso(r.created_at),
            "event": r.event,
            "incident": r.incident_id,
            "destination": r.destination,
            "state": r.state,
            "attempts": r.attempts,
            "remote_ref": r.remote_ref,
            "last_error": r.last_error,
        }
        for r in rows
    ]
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    for i in items:
        line = (
            f"{i['created_at']}  {i['event']:<6} {i['incident']:<18} {i['destination']:<18} {i['state']:<7} "
            f"x{i['attempts']}  {i['remote_ref'] or ''}"
        )
        echo(line + (f"  ({i['last_error']})" if i["last_error"] else ""))
    typer.echo(f"{len(items)} alert(s)")


@app.command("deliver")
def deliver(
    watch: WatchArg,
    blocks: Blocks = False,
) -> None:
    """Deliver the watch's pending alerts now, in order, each once."""
    from pollwatch.notify import deliver_outbox

    w = option_watch(watch)
    report = deliver_outbox(w, _transport(blocks))
    if report.busy:
        typer.echo(
            f"another delivery run for {w.name} is under way (a tick, or another `alerts deliver`); "
            f"it delivers the pending alerts, so this run sent nothing"
        )
        return
    typer.echo(
        f"{report.transport}: {len(report.sent)} delivered ({report.posted} posts, {report.edited} edits, "
        f"{report.held} held, {report.skipped} below thresholds, {report.recovered} found already posted)"
    )
    for channel, error in report.errors.items():
        echo(f"{channel}: {report.waiting.get(channel, 0)} waiting: {error}", err=True)
    if report.errors:
        fail("some alerts are still waiting", code=1)
