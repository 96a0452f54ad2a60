"""The detectors' and the grouper's decisions: baselines, anomalies and incidents (responders' actions on an
incident survive a tick that read it before they acted)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session

from pollwatch.models import Anomaly, Cause, Incident
from pollwatch.store.tables import AnomalyRow, BaselineRow, IncidentRow, rows_by_id
from pollwatch.timeutil import utc_now


def save_anomalies(session: Session, anomalies: Iterable[Anomaly]) -> None:
    anomalies = list(anomalies)
    existing = rows_by_id(session, AnomalyRow, [a.id for a in anomalies])
    for a in anomalies:
        row = existing.get(a.id)
        data = a.model_dump(mode="json")
        if row is None:
            existing[a.id] = row = AnomalyRow(
                id=a.id,
                watch=a.watch,
                source=a.source,
                signal=a.signal,
                entity=a.entity.key,
                start=a.start,
                end=a.end,
                detected_at=a.detected_at,
                data=data,
            )
            session.add(row)
        else:
            row.end, row.data = a.end, data


def list_anomalies(session: Session, watch: str) -> list[Anomaly]:
    rows = session.execute(select(AnomalyRow).where(AnomalyRow.watch == watch).order_by(AnomalyRow.start)).scalars()
    return [Anomaly.model_validate(r.data) for r in rows]


def save_incidents(session: Session, incidents: Iterable[Incident]) -> None:
    incidents = list(incidents)
    existing = rows_by_id(session, IncidentRow, [i.id for i in incidents])
    for inc in incidents:
        row = existing.get(inc.id)
        if row is not None:
            inc = _keep_responders(inc, row.data)
        fields = dict(
            watch=inc.watch,
            country=inc.country,
            kind=inc.kind.value,
            status=inc.status,
            start=inc.start,
            end=inc.end,
            detected_at=inc.detected_at,
            updated_at=inc.updated_at,
            severity=inc.severity,
            cause=inc.cause.value,
            cause_confidence=inc.cause_confidence,
            data=inc.model_dump(mode="json"),
        )
        if row is None:
            existing[inc.id] = row = IncidentRow(id=inc.id, **fields)
            session.add(row)
        else:
            for k, v in fields.items():
                setattr(row, k, v)


def _keep_responders(inc: Incident, stored: dict[str, Any] | None) -> Incident:
    """What responders did (pollwatch.responders, overrides) survives a tick that
    read the incident before they acted.
    """
    if not stored:
        return inc
    keys = {r.get("key") for r in inc.responses}
    missing = [r for r in stored.get("responses") or [] if r.get("key") not in keys]
    old = stored.get("override")
    take_override = bool(old) and (not inc.override or str(old.get("at") or "") > str(inc.override.get("at") or ""))
    if not missing and not take_override:
        return inc
    update: dict[str, Any] = {}
    if missing:
        update["responses"] = sorted(inc.responses + missing, key=lambda r: str(r.get("at") or ""))
    if take_override:
        update.update(override=old, cause=Cause(old["cause"]), cause_confidence=1.0)
    return inc.model_copy(update=update)


def get_incident(session: Session, incident_id: str) -> Incident | None:
    row = session.get(IncidentRow, incident_id)
    return Incident.model_validate(row.data) if row else None


def list_incidents(
    session: Session, watch: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> list[Incident]:
    stmt = select(IncidentRow).order_by(IncidentRow.start, IncidentRow.id)
    if watch:
        stmt = stmt.where(IncidentRow.watch == watch)
    if until:
        # a recurring incident's row has its latest episode's start; its first episode was detected (detected_at)
        # before a later one started
        stmt = stmt.where(or_(IncidentRow.start < until, IncidentRow.detected_at < until))
    rows = session.execute(stmt).scalars()
    out = [Incident.model_validate(r.data) for r in rows]
    return [i for i in out if i.during(since, until)] if since or until else out


# --- baselines -------------------------------------------------------------------------------


def save_baselines(session: Session, watch: str, baselines: Iterable[Any]) -> int:
    """Replace each (watch, source, signal, entity) baseline with the newest one."""
    n = 0
    for b in baselines:
        row = session.execute(
            select(BaselineRow).where(
                BaselineRow.watch == watch,
                BaselineRow.source == b.source,
                BaselineRow.signal == b.signal,
                BaselineRow.entity == b.entity,
            )
        ).scalar_one_or_none()
        fields = dict(
            computed_at=utc_now(),
            expected=b.expected,
            spread=b.spread,
            window_start=b.window_start,
            window_end=b.window_end,
            points=b.points,
            coverage=b.coverage,
            usable=b.usable,
            reason=b.reason,
        )
        if row is None:
            session.add(BaselineRow(watch=watch, source=b.source, signal=b.signal, entity=b.entity, **fields))
        else:
            for k, v in fields.items():
                setattr(row, k, v)
        n += 1
    return n


def list_baselines(session: Session, watch: str) -> list[BaselineRow]:
    return list(
        session.execute(
            select(BaselineRow).where(BaselineRow.watch == watch).order_by(BaselineRow.signal, BaselineRow.entity)
        ).scalars()
    )
