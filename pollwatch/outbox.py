"""The alert outbox's writes: alerts queued before anything is sent, and each delivery attempt's outcome.

Each write records itself in the audit log in the same transaction (queued, sent, failed, retry), so the
outbox and the log commit together or not at all. This sits above both pollwatch.store (the outbox's
table and its reads: `pending_alerts`, `alert_rows`, `begin_alert_attempt`) and pollwatch.audit, which
reads the store: the store itself never writes the log.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlmodel import Session

from pollwatch import audit
from pollwatch.models import Alert, AlertState
from pollwatch.store import AlertRow
from pollwatch.timeutil import utc_now


def enqueue_alerts(session: Session, alerts: Iterable[Alert]) -> list[Alert]:
    """Put alerts in the outbox before anything is sent; an alert already there is not added again."""
    added = []
    for a in alerts:
        exists = session.execute(select(AlertRow.id).where(AlertRow.idempotency_key == a.idempotency_key)).first()
        if exists:
            continue
        session.add(
            AlertRow(
                id=a.id,
                watch=a.watch,
                incident_id=a.incident_id,
                event=a.event,
                sequence=a.sequence,
                destination=a.destination,
                idempotency_key=a.idempotency_key,
                created_at=a.created_at,
                text=a.text,
                payload=a.payload,
                state=a.state.value,
                attempts=a.attempts,
            )
        )
        added.append(a)
        audit.record_alert(session, alert=a, action="queued")
    return added


def mark_alert(
    session: Session, alert_id: str, state: AlertState, remote_ref: str | None = None, error: str | None = None
) -> None:
    """Count a delivery attempt: sent (with the destination's reference), failed for good, or to retry."""
    row = session.get(AlertRow, alert_id)
    if row is None:
        raise KeyError(f"no alert {alert_id} in the outbox")
    row.attempts += 1
    row.state = state.value
    if state is AlertState.sent:
        row.sent_at = utc_now()
        row.remote_ref = remote_ref
        row.last_error = None
    else:
        row.last_error = error
    action = {"sent": "sent", "failed": "failed"}.get(row.state, "retry")
    audit.record_alert(session, alert=row, action=action, remote_ref=remote_ref, error=error)
