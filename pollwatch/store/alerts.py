"""The alert outbox as stored: what is pending, what was sent, the in-flight mark taken before a send, and the file
ids of chart uploads kept before they are completed. Queueing and marking, which also write the audit log, are in
pollwatch.outbox."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from pollwatch.models import Alert, AlertState
from pollwatch.store.tables import AlertRow, UploadRow
from pollwatch.timeutil import utc_now


def alert_from_row(r: AlertRow) -> Alert:
    return Alert(
        id=r.id,
        watch=r.watch,
        incident_id=r.incident_id,
        event=r.event,
        sequence=r.sequence,
        destination=r.destination,
        idempotency_key=r.idempotency_key,
        created_at=r.created_at,
        text=r.text,
        payload=r.payload or {},
        state=AlertState(r.state),
        attempts=r.attempts,
    )


def pending_alerts(session: Session, watch: str | None = None, destination: str | None = None) -> list[Alert]:
    """Undelivered alerts in the order they were created."""
    stmt = (
        select(AlertRow)
        .where(AlertRow.state != AlertState.sent.value)
        .order_by(AlertRow.created_at, AlertRow.sequence, AlertRow.id)
    )
    if watch:
        stmt = stmt.where(AlertRow.watch == watch)
    if destination:
        stmt = stmt.where(AlertRow.destination == destination)
    return [alert_from_row(r) for r in session.execute(stmt).scalars()]


def list_alerts(session: Session, watch: str | None = None, incident_id: str | None = None) -> list[Alert]:
    stmt = select(AlertRow).order_by(AlertRow.created_at, AlertRow.sequence, AlertRow.id)
    if watch:
        stmt = stmt.where(AlertRow.watch == watch)
    if incident_id:
        stmt = stmt.where(AlertRow.incident_id == incident_id)
    return [alert_from_row(r) for r in session.execute(stmt).scalars()]


IN_FLIGHT = "in flight: sent or not, unknown until marked"


def begin_alert_attempt(session: Session, alert_id: str) -> AlertRow:
    """Mark an alert as being sent, before it goes out; return its row as it was before.

    Commit this before calling the destination: if the worker dies after the destination accepted
    the alert but before `mark_alert`, the next attempt sees the mark and looks the message up
    instead of sending it again.
    """
    row = session.get(AlertRow, alert_id)
    if row is None:
        raise KeyError(f"no alert {alert_id} in the outbox")
    before = AlertRow.model_validate(row.model_dump())
    row.last_error = IN_FLIGHT
    return before


def alert_rows(session: Session, incident_id: str | None = None, watch: str | None = None) -> list[AlertRow]:
    """Outbox rows with their delivery details (remote_ref, attempts, last_error), in creation order."""
    stmt = select(AlertRow).order_by(AlertRow.created_at, AlertRow.sequence, AlertRow.id)
    if incident_id:
        stmt = stmt.where(AlertRow.incident_id == incident_id)
    if watch:
        stmt = stmt.where(AlertRow.watch == watch)
    return list(session.execute(stmt).scalars())


def recorded_upload(session: Session, key: str) -> str | None:
    """The file id recorded for the upload `key` (<transport>:<channel id>:<thread ts>:<file name>), or None."""
    row = session.get(UploadRow, key)
    return None if row is None else row.file_id


def record_upload(session: Session, key: str, file_id: str) -> None:
    """Keep the file id of the upload `key` before it is completed (a later one replaces it: the earlier never was).

    Commit this before completing the upload: a process killed after Slack completed it leaves the id for the next
    attempt to ask files.info about (Slack shares a completed file into its thread asynchronously)."""
    row = session.get(UploadRow, key)
    if row is None:
        session.add(UploadRow(key=key, file_id=file_id, recorded_at=utc_now()))
    else:
        row.file_id, row.recorded_at = file_id, utc_now()
