"""Notify stage: alerts into the outbox first, then delivered in order, each once.

Delivery goes to Slack when credentials exist (a bot token: threads, edits, charts; else an
incoming webhook), otherwise to the console with the same content. Credentials are read here,
not in the core: Prefect Secret blocks `slack-bot-token` / `slack-webhook-url` first, then
POLLWATCH_SLACK_BOT_TOKEN / POLLWATCH_SLACK_WEBHOOK_URL. They are passed on as SecretStr only.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from pollwatch import outbox, store
from pollwatch.alerts import build_alerts
from pollwatch.models import Alert, AlertState, Anomaly, Gap, IncidentEvent, Notice
from pollwatch.notify import (
    ConsoleTransport,
    DeliveryReport,
    Transport,
    choose_transport,
    deliver_outbox,
    gap_alerts,
    notice_alerts,
)
from pollwatch.playbook import Watch
from pollwatch.settings import get_settings
from pollwatch.tasks.secrets import secret_block

REPLAY = "replay"
BOT_TOKEN_BLOCK = "slack-bot-token"
WEBHOOK_BLOCK = "slack-webhook-url"
APP_TOKEN_BLOCK = "slack-app-token"  # xapp-…: Socket Mode, for responders' buttons (pollwatch.notify.interact)
SIGNING_SECRET_BLOCK = "slack-signing-secret"  # checks Slack's requests to an HTTP request URL


def slack_credentials() -> tuple[SecretStr | None, SecretStr | None]:
    """(bot token, webhook URL): Secret blocks take precedence over the environment."""
    settings = get_settings()
    token = secret_block(BOT_TOKEN_BLOCK) or settings.slack_bot_token
    webhook = None if token else (secret_block(WEBHOOK_BLOCK) or settings.slack_webhook_url)
    return token, webhook


def slack_action_credentials() -> tuple[SecretStr | None, SecretStr | None, SecretStr | None]:
    """(bot token, app-level token, signing secret) for receiving responders' actions:
    Secret blocks first, then the environment.
    """
    settings = get_settings()
    return (
        secret_block(BOT_TOKEN_BLOCK) or settings.slack_bot_token,
        secret_block(APP_TOKEN_BLOCK) or settings.slack_app_token,
        secret_block(SIGNING_SECRET_BLOCK) or settings.slack_signing_secret,
    )


def default_transport() -> Transport:
    """Slack when credentials are configured, else the console (charts written under POLLWATCH_HOME/charts)."""
    settings = get_settings()
    token, webhook = slack_credentials()
    transport = choose_transport(token, webhook, base_url=settings.slack_base_url)
    if isinstance(transport, ConsoleTransport):
        transport.chart_dir = settings.home / "charts"
    return transport


def _flow_run_url() -> str | None:
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_UI_URL

    run_id, ui = flow_run.get_id(), PREFECT_UI_URL.value()
    return f"{ui}/runs/flow-run/{run_id}" if run_id and ui and str(ui).startswith("http") else None


@task(name="notify", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def notify_task(
    watch: Watch,
    events: list[IncidentEvent],
    replay: bool = False,
    notices: list[Notice] | None = None,
    anomalies: list[Anomaly] | None = None,
    gaps: list[Gap] | None = None,
) -> list[Alert]:
    """Store an alert per incident event (and per operator notice or data gap) in the outbox, then deliver everything
    pending.

    A replay records the alerts that would have been sent (destination `replay`, never delivered).
    Returns the alerts built from `events`, whether or not an earlier run already delivered them.
    """
    alerts = build_alerts(watch, events)
    if replay:
        alerts = [
            a.model_copy(
                update={
                    "destination": REPLAY,
                    "idempotency_key": f"{REPLAY}:{a.idempotency_key}",
                    "id": f"r{a.id[1:]}",
                    "state": AlertState.sent,
                }
            )
            for a in alerts
        ]
    with store.session_scope() as s:
        ops = [] if replay else notice_alerts(watch, notices or []) + gap_alerts(watch, gaps or [])
        outbox.enqueue_alerts(s, alerts + ops)
    if not replay:
        deliver_pending(watch, anomalies=anomalies)
    return alerts


def deliver_pending(
    watch: Watch, transport: Transport | None = None, anomalies: list[Anomaly] | None = None
) -> DeliveryReport:
    """Send every undelivered alert of the watch, oldest first per channel; Slack trouble leaves them pending."""
    logger = get_run_logger()
    if transport is None:
        with store.session_scope() as s:
            if not store.pending_alerts(s, watch.name):  # a quiet tick: no credentials to look up, no API calls
                return DeliveryReport(transport="none")
        transport = default_transport()
    report = deliver_outbox(watch, transport, flow_run_url=_flow_run_url(), anomalies=anomalies)
    logger.info(
        "alerts via %s: %d delivered (%d posts, %d edits, %d held for the hourly limit, %d below thresholds, "
        "%d found already posted)",
        report.transport,
        len(report.sent),
        report.posted,
        report.edited,
        report.held,
        report.skipped,
        report.recovered,
    )
    if report.busy:
        logger.info("alerts of %s: another delivery run holds the watch's delivery lease and delivers them", watch.name)
    for channel, error in report.errors.items():
        logger.warning(
            "alerts for %s not delivered yet (%d waiting): %s", channel, report.waiting.get(channel, 0), error
        )
    return report
