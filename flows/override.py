"""review-attribution: a flow run that waits, paused, for a responder to confirm or override a cause.

Start it for an incident (from a deployment, an automation on a new incident, or by hand); it
pauses with an input form (`AttributionReview`) that the Prefect UI shows on the paused run, or
that `prefect.flow_runs.resume_flow_run(id, run_input={...})` fills in. On resume it records the
responder's decision exactly as `pollwatch override` does (incident row, audit log, an update
alert in the outbox). With no answer before `timeout_seconds` the run fails and nothing changes.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from pollwatch import store
from pollwatch.models import Cause
from pollwatch.override import find_incident, override_incident


class AttributionReview(RunInput):
    """What the responder answers: the cause (the current one to confirm it), who, and why."""

    cause: Cause
    by: str
    why: str


@flow(name="review-attribution", flow_run_name="review-{incident_id}", log_prints=True)
def review_attribution(incident_id: str, timeout_seconds: int = 6 * 3600, poll_interval: int = 10) -> dict:
    """Pause until a responder confirms or overrides the attribution of `incident_id`; then record it."""
    logger = get_run_logger()
    with store.session_scope() as s:
        inc = find_incident(s, incident_id)
    top = "; ".join(e.detail for e in inc.evidence[:3])
    logger.info(
        "incident %s (%s in %s): attributed %s at %.0f%%: %s. Waiting for a responder.",
        inc.id,
        inc.kind.value,
        inc.country,
        inc.cause.value,
        inc.cause_confidence * 100,
        top,
    )
    answer = pause_flow_run(
        wait_for_input=AttributionReview.with_initial_data(
            description=f"Incident {inc.id}: {inc.kind.value} in {inc.country}, attributed {inc.cause.value} "
            f"({inc.cause_confidence:.0%}). Confirm the cause or choose another; say who you are and why.",
            cause=inc.cause,
            by="",
            why="",
        ),
        timeout=timeout_seconds,
        poll_interval=poll_interval,
    )
    after, alerts = override_incident(inc.id, answer.cause, answer.by, answer.why)
    logger.info(
        "incident %s: cause %s set by %s; %d alert(s) queued", after.id, after.cause.value, answer.by, len(alerts)
    )
    return {"incident": after.id, "cause": after.cause.value, "by": answer.by, "why": answer.why, "alerts": len(alerts)}
