"""Observations: upserted on (source, signal, entity, time) with the table's running content digest
(pollwatch.digest) kept in step, and read back by country, time and signal."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlmodel import Session

from pollwatch.models import Observation, Provenance
from pollwatch.store.tables import ObservationDigestRow, ObservationRow


def _obs_values(o: Observation) -> dict[str, Any]:
    prov = o.provenance or Provenance()
    return {
        "source": o.source,
        "signal": o.signal,
        "entity": o.entity_key,
        "country": o.country,
        "region": o.region,
        "asn": o.asn,
        "service": o.service,
        "time": o.time,
        "value": o.value,
        "count": o.count,
        "request": prov.request,
        "fetched_at": prov.fetched_at,
        "payload_hash": prov.payload_hash,
    }


def upsert_observations(
    session: Session, observations: Iterable[Observation], chunk: int = 2000, tally: dict[str, int] | None = None
) -> int:
    """Insert or update observations on (source, signal, entity, time); returns how many were written.

    Importing the same data twice stores each observation once. A later value for the same key
    replaces an earlier one (a source may revise a point), keeping the newest provenance. `tally`, when given,
    counts the distinct keys written as `new`, `changed` (another value or count was stored) and `unchanged`.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    table = ObservationRow.__table__
    stmt = insert(table)
    # one compiled statement, executed for many rows (SQLAlchemy batches them: "insertmanyvalues")
    stmt = stmt.on_conflict_do_update(
        index_elements=["source", "signal", "entity", "time"],
        set_={k: stmt.excluded[k] for k in ("value", "count", "request", "fetched_at", "payload_hash")},
    )
    written = 0
    batch: dict[tuple[Any, ...], dict[str, Any]] = {}
    digest = _lock_digest(session)

    def flush() -> None:
        nonlocal written
        if not batch:
            return
        rows = list(batch.values())
        old = _stored_rows(session, batch)
        if tally is not None:
            _count_changes(tally, old, batch)
        session.execute(stmt, rows)
        digest.replace(old, rows)
        written += len(rows)
        batch.clear()

    for o in observations:
        v = _obs_values(o)
        batch[(v["source"], v["signal"], v["entity"], v["time"])] = v  # last one wins inside a batch
        if len(batch) >= chunk:
            flush()
    flush()
    _save_digest(session, digest)
    return written


# --- the observation table's content digest (pollwatch.digest; audit: observation edits) ---------

_DIGEST_NAME = "observation"
_DIGEST_COLUMNS = ("source", "signal", "entity", "time", "value", "count")


def _lock_digest(session: Session) -> Any:
    """The running digest, locked for this transaction (observation writers run one at a time); built
    from the whole table the first time (a store from before migration 0006)."""
    from pollwatch.digest import TableDigest

    table = ObservationDigestRow.__table__
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(table).values(name=_DIGEST_NAME, state=b"", rows=-1).on_conflict_do_nothing())
        row = session.execute(select(table).where(table.c.name == _DIGEST_NAME).with_for_update()).first()
    else:  # SQLite: BEGIN IMMEDIATE already holds the write lock
        row = session.execute(select(table).where(table.c.name == _DIGEST_NAME)).first()
    if row is None or row.rows < 0:
        return table_digest(session)
    return TableDigest.from_bytes(row.state, row.rows)


def _save_digest(session: Session, digest: Any) -> None:
    table = ObservationDigestRow.__table__
    values = {"state": digest.to_bytes(), "rows": digest.rows}
    if session.execute(update(table).where(table.c.name == _DIGEST_NAME).values(**values)).rowcount == 0:
        session.execute(table.insert().values(name=_DIGEST_NAME, **values))


def _count_changes(tally: dict[str, int], old: list[Any], batch: Mapping[tuple[Any, ...], dict[str, Any]]) -> None:
    before = {(r.source, r.signal, r.entity, r.time): (r.value, r.count) for r in old}
    for key, v in batch.items():
        was = before.get(key)
        what = "new" if was is None else "unchanged" if was == (v["value"], v["count"]) else "changed"
        tally[what] = tally.get(what, 0) + 1


def _stored_rows(session: Session, batch: Mapping[tuple[Any, ...], dict[str, Any]]) -> list[Any]:
    """The rows the batch is about to replace (same source, signal, entity and time)."""
    t = ObservationRow.__table__.c
    values = list(batch.values())
    stmt = select(*[t[c] for c in _DIGEST_COLUMNS]).where(
        t.country.in_({v["country"] for v in values}),
        t.source.in_({v["source"] for v in values}),
        t.signal.in_({v["signal"] for v in values}),
        t.time >= min(v["time"] for v in values),
        t.time <= max(v["time"] for v in values),
    )
    return [r for r in session.execute(stmt) if (r.source, r.signal, r.entity, r.time) in batch]


def table_digest(session: Session, chunk: int = 20_000) -> Any:
    """The digest of the observation table as it is now, recomputed row by row."""
    from pollwatch.digest import TableDigest

    digest = TableDigest()
    t = ObservationRow.__table__.c
    result = session.execute(select(*[t[c] for c in _DIGEST_COLUMNS]).execution_options(yield_per=chunk))
    for part in result.partitions(chunk):
        digest.replace([], part)
    return digest


def stored_digest(session: Session) -> Any:
    """The running digest as kept by the upserts (None before the first write)."""
    from sqlalchemy import inspect

    from pollwatch.digest import TableDigest

    table = ObservationDigestRow.__table__
    if not inspect(session.connection()).has_table(table.name):
        return None  # a copy of a store from before migration 0006, opened read-only
    row = session.execute(select(table).where(table.c.name == _DIGEST_NAME)).first()
    return TableDigest.from_bytes(row.state, row.rows) if row is not None and row.rows >= 0 else None


def _row_to_observation(r: Any) -> Observation:
    prov = None
    if r.request or r.fetched_at or r.payload_hash:
        prov = Provenance(request=r.request, fetched_at=r.fetched_at, payload_hash=r.payload_hash)
    return Observation(
        time=r.time,
        source=r.source,
        signal=r.signal,
        country=r.country,
        region=r.region,
        asn=r.asn,
        service=r.service,
        value=r.value,
        count=r.count,
        provenance=prov,
    )


def query_observations(
    session: Session,
    country: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    source: str | None = None,
    signal: str | None = None,
    since_by_signal: Mapping[str, datetime] | None = None,
    entities: Collection[str] | None = None,
) -> list[Observation]:
    """Observations in [since, until), ordered by time; `since_by_signal` starts each signal at its own time
    (signals it does not name start at `since`, or at its earliest time); `entities`: only these entity keys."""
    t = ObservationRow.__table__.c
    stmt = select(ObservationRow.__table__)
    if country:
        stmt = stmt.where(t.country == country)
    if since_by_signal:
        groups: dict[datetime, list[str]] = {}
        for sig, start in since_by_signal.items():
            groups.setdefault(start, []).append(sig)
        rest = since or min(groups)
        stmt = stmt.where(
            or_(
                *[and_(t.signal.in_(sigs), t.time >= start) for start, sigs in groups.items()],
                and_(t.signal.notin_(list(since_by_signal)), t.time >= rest),
            )
        )
    elif since:
        stmt = stmt.where(t.time >= since)
    if until:
        stmt = stmt.where(t.time < until)
    if source:
        stmt = stmt.where(t.source == source)
    if signal:
        stmt = stmt.where(t.signal == signal)
    if entities is not None:
        stmt = stmt.where(t.entity.in_(sorted(entities)))
    stmt = stmt.order_by(t.time, t.source, t.signal, t.entity)
    return [_row_to_observation(r) for r in session.execute(stmt)]


def count_observations(session: Session) -> int:
    return session.execute(select(func.count()).select_from(ObservationRow)).scalar_one()
