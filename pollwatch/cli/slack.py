"""`pollwatch slack listen`: receive responders' button presses from Slack (docs/alerts.md, "Acting from Slack").

Socket Mode by default (the app-level token; nothing public needed), or with `--http HOST:PORT`
an HTTP request URL whose requests are checked against the app's signing secret. Credentials
come from the environment, or with `--blocks` from the Prefect Secret blocks first. `pollwatch
serve` starts the same listener when an app-level token is configured.
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any, Optional

import typer

from pollwatch.cli.common import fail, quiet_prefect

app = typer.Typer(help="Slack: receive responders' actions on alerts (docs/alerts.md).", no_args_is_help=True)

Blocks = Annotated[
    bool,
    typer.Option(
        "--blocks",
        help="Read credentials from the Prefect Secret blocks (slack-bot-token, "
        "slack-app-token, slack-signing-secret) first.",
    ),
]


def start_actions(http: str | None = None, blocks: bool = False, required: bool = True) -> Any:
    """Start the listener from the configured credentials; None when not `required`
    and Socket Mode is not configured.
    """
    from pollwatch.notify.interact import start_listener
    from pollwatch.settings import get_settings

    settings = get_settings()
    token, app_token, signing = settings.slack_bot_token, settings.slack_app_token, settings.slack_signing_secret
    if blocks:
        quiet_prefect()
        from pollwatch.tasks.notify import slack_action_credentials

        token, app_token, signing = slack_action_credentials()
    if not required and not http and (app_token is None or token is None):
        return None
    return start_listener(
        token, app_token=app_token, signing_secret=signing, http=http, base_url=settings.slack_base_url
    )


@app.command("listen")
def listen(
    http: Annotated[
        Optional[str],
        typer.Option(
            "--http",
            help="Serve Slack's interactivity request URL at HOST:PORT (path /slack/actions) instead of Socket Mode.",
        ),
    ] = None,
    blocks: Blocks = False,
) -> None:
    """Receive Acknowledge / Confirm cause / Change cause / False alarm / Draft statement from Slack until stopped."""
    from pollwatch.notify.interact import HTTPReceiver

    try:
        listener = start_actions(http, blocks)
    except (ValueError, OSError) as exc:
        fail(f"cannot listen for Slack actions: {exc}")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    where = f"at {listener.url}" if isinstance(listener, HTTPReceiver) else "over Socket Mode"
    typer.echo(f"listening for Slack actions {where}; stop with Ctrl-C or SIGTERM")
    try:
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        listener.stop()
    counts = getattr(listener, "counts", None)
    typer.echo("stopped" + (f"; requests: {', '.join(f'{k} {v}' for k, v in counts.items())}" if counts else ""))
