"""What the sources said besides observations: data gaps, operator notices, and observatories' own outage
records (corroborations)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import or_, select
from sqlmodel import Session

from pollwatch.models import Corroboration, Gap, Notice
from pollwatch.store.tables import CorroborationRow, GapRow, NoticeRow, rows_by_id
from pollwatch.timeutil import utc_now


def add_gaps(session: Session, watch: str, gaps: Iterable[Gap]) -> int:
    n = 0
    for g in gaps:
        same_signal = GapRow.signal.is_(None) if g.signal is None else GapRow.signal == g.signal  # type: ignore[union-attr]
        existing = session.execute(
            select(GapRow).where(
                GapRow.watch == watch,
                GapRow.source == g.source,
                same_signal,
                GapRow.entity == g.entity,
                GapRow.start == g.start,
            )
        ).scalar_one_or_none()
        if existing is None:
            session.add(
                GapRow(
                    watch=watch,
                    source=g.source,
                    signal=g.signal,
                    entity=g.entity,
                    start=g.start,
                    end=g.end,
                    reason=g.reason,
                )
            )
            n += 1
        else:
            existing.end = max(existing.end, g.end)
    return n


def add_notices(session: Session, notices: Iterable[Notice]) -> int:
    n = 0
    for x in notices:
        session.add(NoticeRow(watch=x.watch, time=x.time, level=x.level.value, source=x.source, message=x.message))
        n += 1
    return n


def list_gaps(session: Session, watch: str) -> list[Gap]:
    rows = session.execute(select(GapRow).where(GapRow.watch == watch).order_by(GapRow.start)).scalars()
    return [
        Gap(source=r.source, signal=r.signal, entity=r.entity, start=r.start, end=r.end, reason=r.reason) for r in rows
    ]


def save_corroborations(session: Session, records: Iterable[Corroboration]) -> int:
    """Upsert observatories' outage records by (source, kind, id): a record seen again keeps its first sighting
    and takes the newer content (an ongoing IODA alert gets its end). Returns how many were new."""
    records = {f"{r.source}:{r.kind}:{r.id}": r for r in records}
    existing = rows_by_id(session, CorroborationRow, list(records), key=CorroborationRow.key)
    new = 0
    for key, r in records.items():
        data = r.model_dump(mode="json")
        row = existing.get(key)
        if row is None:
            session.add(
                CorroborationRow(
                    key=key,
                    source=r.source,
                    kind=r.kind,
                    country=r.country,
                    start=r.start,
                    end=r.end,
                    first_seen=utc_now(),
                    data=data,
                )
            )
            new += 1
        else:
            row.start, row.end, row.data = r.start, r.end, data
    return new


def list_corroborations(session: Session, country: str, since: datetime, until: datetime) -> list[Corroboration]:
    """The country's records overlapping [since, until), oldest first."""
    stmt = (
        select(CorroborationRow)
        .where(
            CorroborationRow.country == country,
            CorroborationRow.start < until,
            or_(CorroborationRow.end.is_(None), CorroborationRow.end >= since),
        )  # type: ignore[union-attr]
        .order_by(CorroborationRow.start, CorroborationRow.key)
    )
    return [Corroboration.model_validate(r.data) for r in session.execute(stmt).scalars()]


def list_notices(session: Session, watch: str | None = None) -> list[Notice]:
    stmt = select(NoticeRow).order_by(NoticeRow.time, NoticeRow.id)
    if watch:
        stmt = stmt.where(NoticeRow.watch == watch)
    return [
        Notice(time=r.time, level=r.level, source=r.source, message=r.message, watch=r.watch)
        for r in session.execute(stmt).scalars()
    ]
