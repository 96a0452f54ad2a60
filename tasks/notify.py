"""Notify stage: alerts into the outbox first, then delivered in order by a sink."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pollwatch import store
from pollwatch.alerts import ConsoleSink, Sink, build_alerts
from pollwatch.models import Alert, AlertState, IncidentEvent
from pollwatch.playbook import Watch


def default_sink() -> Sink:
    """The console, until Slack credentials are configured."""
    return ConsoleSink()


REPLAY = "replay"


@task(name="notify", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def notify_task(watch: Watch, events: list[IncidentEvent], replay: bool = False) -> list[Alert]:
    """Store an alert per incident event in the outbox, then deliver everything pending for the watch.

    A replay records the alerts that would have been sent (destination `replay`, never delivered).
    Returns the alerts built from `events`, whether or not an earlier run already delivered them.
    """
    alerts = build_alerts(watch, events)
    if replay:
        alerts = [a.model_copy(update={"destination": REPLAY, "idempotency_key": f"{REPLAY}:{a.idempotency_key}",
                                       "id": f"r{a.id[1:]}", "state": AlertState.sent}) for a in alerts]
    with store.session_scope() as s:
        store.enqueue_alerts(s, alerts)
    if not replay:
        deliver_pending(watch.name, watch.alerts.channel)
    return alerts


def deliver_pending(watch: str, destination: str, sink: Sink | None = None) -> int:
    """Send every undelivered alert of the watch to `destination`, oldest first; stop at the first failure to keep order."""
    sink = sink or default_sink()
    logger = get_run_logger()
    sent = 0
    with store.session_scope() as s:
        pending = store.pending_alerts(s, watch, destination)
    for alert in pending:
        try:
            state, ref = sink.deliver(alert)
        except Exception as exc:  # delivery trouble is recorded, the alert stays pending
            with store.session_scope() as s:
                store.mark_alert(s, alert.id, AlertState.pending, error=type(exc).__name__)
            logger.warning("alert %s not delivered yet: %s", alert.id, type(exc).__name__)
            break
        with store.session_scope() as s:
            store.mark_alert(s, alert.id, state, remote_ref=ref)
        if state is not AlertState.sent:
            break
        sent += 1
    return sent
