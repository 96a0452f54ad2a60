"""pollwatch's own store: SQLModel tables on SQLite (embedded default) or PostgreSQL.

Live and replay data never mix: replays, simulations and the demo write to their own store (the
*replay store*, chosen with `using(REPLAY)`), the same schema in another SQLite file next to the
live one, or another schema (`pollwatch_replay`) of the same PostgreSQL database, or
POLLWATCH_REPLAY_DATABASE_URL. Every view of a live watch reads the live store, so none can count
a simulated incident; a run kind on every row would have needed every query, unique key and
incident id (replays of the same data give the same ids) to carry it, and one forgotten filter
would leak.

The schema is created and changed by Alembic migrations (`pollwatch/migrations/`), never by
`create_all`: `open_store()` upgrades the database to the newest revision before use. On SQLite
the connection runs in WAL mode with a busy timeout and foreign keys on, and writers take the
lock up front (`BEGIN IMMEDIATE`) so concurrent ticks wait instead of failing half-way.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    LargeBinary,
    Index,
    UniqueConstraint,
    and_,
    delete,
    event,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, Session, SQLModel, create_engine

from pollwatch.models import (
    Alert,
    AlertState,
    Anomaly,
    Cause,
    Corroboration,
    Gap,
    Incident,
    Notice,
    Observation,
    Provenance,
)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class UTCDateTime(TypeDecorator):
    """Timestamps stored timezone-aware on PostgreSQL and as UTC on SQLite; always read back aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def _ts(**kw: Any) -> Any:
    return Field(sa_column=Column(UTCDateTime(), **kw))


def _json(**kw: Any) -> Any:
    return Field(default=None, sa_column=Column(JSON, **kw))


# --- tables ----------------------------------------------------------------------------------


class ObservationRow(SQLModel, table=True):
    __tablename__ = "observation"
    __table_args__ = (
        UniqueConstraint("source", "signal", "entity", "time", name="uq_observation_series_time"),
        Index("ix_observation_country_time", "country", "time"),
    )
    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=64)
    signal: str = Field(max_length=64)
    entity: str = Field(max_length=255)
    country: str = Field(max_length=2)
    region: str | None = Field(default=None, max_length=128)
    asn: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))  # 4-byte ASNs reach 2**32-1
    service: str | None = Field(default=None, max_length=128)
    time: datetime = _ts(nullable=False)
    value: float | None = None
    count: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    request: str | None = None
    fetched_at: datetime | None = _ts(nullable=True)
    payload_hash: str | None = Field(default=None, max_length=64)


class ObservationDigestRow(SQLModel, table=True):
    """The observation table's running content digest (pollwatch.digest), kept in step by every upsert."""

    __tablename__ = "observation_digest"
    name: str = Field(primary_key=True, max_length=32)
    state: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    rows: int = Field(sa_column=Column(BigInteger, nullable=False))


class GapRow(SQLModel, table=True):
    __tablename__ = "gap"
    # a signal-less gap (a whole source down) counts as signal '' (NULLs would never collide)
    __table_args__ = (
        Index("uq_gap_signal", "watch", "source", text("coalesce(signal, '')"), "entity", "start", unique=True),
    )
    id: int | None = Field(default=None, primary_key=True)
    watch: str = Field(index=True, max_length=128)
    source: str = Field(max_length=64)
    signal: str | None = Field(default=None, max_length=64)
    entity: str = Field(max_length=255)
    start: datetime = _ts(nullable=False)
    end: datetime = _ts(nullable=False)
    reason: str


class NoticeRow(SQLModel, table=True):
    __tablename__ = "notice"
    id: int | None = Field(default=None, primary_key=True)
    watch: str | None = Field(default=None, index=True, max_length=128)
    time: datetime = _ts(nullable=False)
    level: str = Field(max_length=16)
    source: str = Field(max_length=64)
    message: str


class BaselineRow(SQLModel, table=True):
    __tablename__ = "baseline"
    __table_args__ = (UniqueConstraint("watch", "source", "signal", "entity", name="uq_baseline"),)
    id: int | None = Field(default=None, primary_key=True)
    watch: str = Field(index=True, max_length=128)
    source: str = Field(max_length=64)
    signal: str = Field(max_length=64)
    entity: str = Field(max_length=255)
    computed_at: datetime = _ts(nullable=False)
    expected: float | None = None
    spread: float | None = None
    window_start: datetime = _ts(nullable=False)
    window_end: datetime = _ts(nullable=False)
    points: int = 0
    coverage: float = 0.0
    usable: bool = False
    reason: str = ""


class AnomalyRow(SQLModel, table=True):
    __tablename__ = "anomaly"
    id: str = Field(primary_key=True, max_length=64)
    watch: str = Field(index=True, max_length=128)
    source: str = Field(max_length=64)
    signal: str = Field(max_length=64)
    entity: str = Field(max_length=255)
    start: datetime = _ts(nullable=False)
    end: datetime | None = _ts(nullable=True)
    detected_at: datetime = _ts(nullable=False)
    data: dict[str, Any] | None = _json(nullable=False)


class IncidentRow(SQLModel, table=True):
    __tablename__ = "incident"
    id: str = Field(primary_key=True, max_length=64)
    watch: str = Field(index=True, max_length=128)
    country: str = Field(max_length=2)
    kind: str = Field(max_length=32)
    status: str = Field(max_length=16)
    start: datetime = _ts(nullable=False)
    end: datetime | None = _ts(nullable=True)
    detected_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    severity: float = 0.0
    cause: str = Field(max_length=32)
    cause_confidence: float = 0.0
    data: dict[str, Any] | None = _json(nullable=False)


class AlertRow(SQLModel, table=True):
    __tablename__ = "alert"
    id: str = Field(primary_key=True, max_length=64)
    watch: str = Field(index=True, max_length=128)
    incident_id: str = Field(index=True, max_length=64)
    event: str = Field(max_length=16)
    sequence: int = 0
    destination: str = Field(max_length=128)
    idempotency_key: str = Field(unique=True, max_length=128)
    created_at: datetime = _ts(nullable=False)
    text: str
    payload: dict[str, Any] | None = _json(nullable=True)
    state: str = Field(default="pending", max_length=16)
    attempts: int = 0
    sent_at: datetime | None = _ts(nullable=True)
    remote_ref: str | None = Field(default=None, max_length=255)
    last_error: str | None = None


class WatchStateRow(SQLModel, table=True):
    """The detectors' and the incident grouper's state between ticks (a tick costs O(new data))."""

    __tablename__ = "watch_state"
    watch: str = Field(primary_key=True, max_length=128)
    last_tick: datetime | None = _ts(nullable=True)
    state: dict[str, Any] | None = _json(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class TickRow(SQLModel, table=True):
    """One row per (watch, scheduled tick) that completed: a re-run of a done tick changes nothing."""

    __tablename__ = "tick"
    __table_args__ = (UniqueConstraint("watch", "tick", name="uq_tick"),)
    id: int | None = Field(default=None, primary_key=True)
    watch: str = Field(max_length=128)
    tick: datetime = _ts(nullable=False)
    completed_at: datetime = _ts(nullable=False)
    flow_run_id: str | None = Field(default=None, max_length=64)
    summary: dict[str, Any] | None = _json(nullable=True)


class LeaseRow(SQLModel, table=True):
    """A named claim that expires: while one process holds `deliver:<watch>`, no other delivers that watch's alerts."""

    __tablename__ = "lease"
    name: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=200)
    expires_at: datetime = _ts(nullable=False)


class CorroborationRow(SQLModel, table=True):
    """An observatory's own outage record (pollwatch.models.Corroboration), kept for attribution and auditors."""

    __tablename__ = "corroboration"
    __table_args__ = (Index("ix_corroboration_country_start", "country", "start"),)
    key: str = Field(primary_key=True, max_length=400)  # source:kind:id
    source: str = Field(max_length=64)
    kind: str = Field(max_length=64)
    country: str = Field(max_length=8)
    start: datetime = _ts(nullable=False)
    end: datetime | None = _ts(nullable=True)
    first_seen: datetime = _ts(nullable=False)
    data: dict[str, Any] = _json(nullable=False)


class AuditRow(SQLModel, table=True):
    """Append-only, hash-chained audit log (see pollwatch.audit)."""

    __tablename__ = "audit_entry"
    seq: int = Field(primary_key=True)
    time: datetime = _ts(nullable=False)
    kind: str = Field(max_length=32, index=True)
    watch: str | None = Field(default=None, max_length=128, index=True)
    subject: str | None = Field(default=None, max_length=128)
    payload: dict[str, Any] | None = _json(nullable=False)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


# --- engine ----------------------------------------------------------------------------------

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _setup_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event issue BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


LIVE, REPLAY = "live", "replay"
REPLAY_SCHEMA = "pollwatch_replay"
_store_kind: ContextVar[str] = ContextVar("pollwatch_store_kind", default=LIVE)


@contextmanager
def using(kind: str) -> Iterator[str]:
    """Sessions opened inside (in this thread, and the Prefect tasks it starts) use the `kind` store: LIVE or REPLAY."""
    if kind not in (LIVE, REPLAY):
        raise ValueError(f"unknown store {kind!r}: expected {LIVE!r} or {REPLAY!r}")
    token = _store_kind.set(kind)
    try:
        yield kind
    finally:
        _store_kind.reset(token)


def store_kind() -> str:
    """Which store sessions open here use: LIVE (the default) or REPLAY."""
    return _store_kind.get()


def replay_database_url(live_url: str) -> str:
    """The replay store beside a live store: `x.sqlite` -> `x-replay.sqlite`; PostgreSQL: the same database, schema
    `pollwatch_replay`."""
    if live_url.startswith("sqlite"):
        head, _, path = live_url.partition(":///")
        if not path or path == ":memory:":
            return live_url
        p = Path(path)
        suffix = p.suffix or ".sqlite"
        return f"{head}:///{p.with_name(p.stem + '-replay' + suffix)}"
    sep = "&" if "?" in live_url else "?"
    return f"{live_url}{sep}options=-csearch_path%3D{REPLAY_SCHEMA}"


def database_url(url: str | None = None) -> str:
    from pollwatch.settings import get_settings

    if not url:
        settings = get_settings()
        url = settings.resolved_database_url
        if store_kind() == REPLAY:
            url = settings.replay_database_url or replay_database_url(url)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def get_engine(url: str | None = None) -> Engine:
    """One engine per URL per process, migrated to the newest schema on first use."""
    url = database_url(url)
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                path = url.split("///", 1)[-1]
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
                _setup_sqlite(engine)
            else:
                engine = create_engine(url, pool_pre_ping=True)
                # the replay store's schema, made before its first migration
                if f"search_path%3D{REPLAY_SCHEMA}" in url:
                    with engine.begin() as conn:
                        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {REPLAY_SCHEMA}")
            migrate(engine)
            _engines[url] = engine
    return engine


def dispose_engines() -> None:
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to `revision` with Alembic."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back everything on error (no partial writes)."""
    with Session(get_engine(url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def readonly_session(url: str | None = None) -> Iterator[Session]:
    """A session that cannot write: no migration, SQLite opened read-only (`immutable=1` for a copy
    without a WAL file, else `mode=ro`), PostgreSQL in read-only transactions. For checking the
    store or a copy of it (`pollwatch audit verify`)."""
    import sqlite3
    from urllib.parse import quote

    url = database_url(url)
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[-1]).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such store")

        # Without a -wal file every committed page is in the file itself: immutable=1 reads it without
        # locks or -shm (a copy on read-only media). With one, mode=ro also reads what the WAL holds.
        wal = path.with_name(path.name + "-wal").exists()
        order = ("mode=ro", "mode=ro&immutable=1") if wal else ("mode=ro&immutable=1",)

        def connect() -> sqlite3.Connection:
            for flags in order:
                conn = sqlite3.connect(f"file:{quote(str(path))}?{flags}", uri=True, check_same_thread=False)
                try:
                    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                    return conn
                except sqlite3.OperationalError:
                    conn.close()
                    if flags == order[-1]:
                        raise
            raise AssertionError("unreachable")

        engine = create_engine("sqlite://", creator=connect)
    else:
        engine = create_engine(url, connect_args={"options": "-c default_transaction_read_only=on"})
    try:
        with Session(engine) as session:
            try:
                yield session
            finally:
                session.rollback()
    finally:
        engine.dispose()


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --- observations ----------------------------------------------------------------------------


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


def upsert_observations(session: Session, observations: Iterable[Observation], chunk: int = 2000) -> int:
    """Insert or update observations on (source, signal, entity, time); returns how many were written.

    Importing the same data twice stores each observation once. A later value for the same key
    replaces an earlier one (a source may revise a point), keeping the newest provenance.
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
    from pollwatch.digest import TableDigest

    from sqlalchemy import inspect

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
) -> list[Observation]:
    """Observations in [since, until), ordered by time; `since_by_signal` starts each signal at its own time
    (signals it does not name start at `since`, or at its earliest time)."""
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
    stmt = stmt.order_by(t.time, t.source, t.signal, t.entity)
    return [_row_to_observation(r) for r in session.execute(stmt)]


def count_observations(session: Session) -> int:
    return session.execute(select(func.count()).select_from(ObservationRow)).scalar_one()


# --- gaps and notices ------------------------------------------------------------------------


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
    existing = _rows_by_id(session, CorroborationRow, list(records), key=CorroborationRow.key)
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
                    first_seen=_now(),
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


# --- anomalies, incidents, alerts -----------------------------------------------------------


def _rows_by_id(session: Session, model: Any, ids: Sequence[str], chunk: int = 500, key: Any = None) -> dict[str, Any]:
    """The stored rows among `ids` (primary key `key`, default `model.id`), looked up a chunk at a time
    (an outage tick updates hundreds at once)."""
    column = model.id if key is None else key
    found: dict[str, Any] = {}
    unique = list(dict.fromkeys(ids))
    for i in range(0, len(unique), chunk):
        for row in session.execute(select(model).where(column.in_(unique[i : i + chunk]))).scalars():
            found[getattr(row, column.key)] = row
    return found


def save_anomalies(session: Session, anomalies: Iterable[Anomaly]) -> None:
    anomalies = list(anomalies)
    existing = _rows_by_id(session, AnomalyRow, [a.id for a in anomalies])
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
    existing = _rows_by_id(session, IncidentRow, [i.id for i in incidents])
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
        stmt = stmt.where(IncidentRow.start < until)
    rows = session.execute(stmt).scalars()
    out = [Incident.model_validate(r.data) for r in rows]
    if since:
        out = [i for i in out if i.end is None or i.end >= since]
    return out


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
        _audit_alert(session, a, "queued")
    return added


def _row_to_alert(r: AlertRow) -> Alert:
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
    return [_row_to_alert(r) for r in session.execute(stmt).scalars()]


def list_alerts(session: Session, watch: str | None = None, incident_id: str | None = None) -> list[Alert]:
    stmt = select(AlertRow).order_by(AlertRow.created_at, AlertRow.sequence, AlertRow.id)
    if watch:
        stmt = stmt.where(AlertRow.watch == watch)
    if incident_id:
        stmt = stmt.where(AlertRow.incident_id == incident_id)
    return [_row_to_alert(r) for r in session.execute(stmt).scalars()]


def mark_alert(
    session: Session, alert_id: str, state: AlertState, remote_ref: str | None = None, error: str | None = None
) -> None:
    row = session.get(AlertRow, alert_id)
    if row is None:
        raise KeyError(f"no alert {alert_id} in the outbox")
    row.attempts += 1
    row.state = state.value
    if state is AlertState.sent:
        row.sent_at = _now()
        row.remote_ref = remote_ref
        row.last_error = None
    else:
        row.last_error = error
    _audit_alert(session, row, {"sent": "sent", "failed": "failed"}.get(row.state, "retry"), remote_ref, error)


def _audit_alert(
    session: Session, alert: Any, action: str, remote_ref: str | None = None, error: str | None = None
) -> None:
    """Every alert queued, sent or failed goes into the audit log in the same transaction."""
    from pollwatch import audit  # audit builds on this module

    audit.record_alert(session, alert=alert, action=action, remote_ref=remote_ref, error=error)


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


# --- watch state and ticks ------------------------------------------------------------------


def load_watch_state(session: Session, watch: str) -> tuple[dict[str, Any] | None, datetime | None]:
    row = session.get(WatchStateRow, watch)
    if row is None:
        return None, None
    return row.state, row.last_tick


def save_watch_state(session: Session, watch: str, state: dict[str, Any], last_tick: datetime) -> None:
    row = session.get(WatchStateRow, watch)
    if row is None:
        session.add(WatchStateRow(watch=watch, state=state, last_tick=last_tick, updated_at=_now()))
    else:
        row.state, row.last_tick, row.updated_at = state, last_tick, _now()


TICK_RUNNING = "running"


def tick_done(session: Session, watch: str, tick: datetime) -> bool:
    """True when the tick completed, or a run has claimed it (see claim_tick)."""
    return session.execute(select(TickRow.id).where(TickRow.watch == watch, TickRow.tick == tick)).first() is not None


def claim_tick(
    session: Session,
    watch: str,
    tick: datetime,
    flow_run_id: str | None,
    stale_after: timedelta = timedelta(minutes=15),
) -> bool:
    """Claim (watch, tick) before doing any of its work; False when it is done or another run holds it.

    The claim is the tick's row, marked running (`completed_at` holds the claim time) until
    mark_tick_done completes it, so two runs of one tick started at once cannot both run the
    stages. The same flow run may claim again (a Prefect retry); a claim older than `stale_after`
    (a worker killed mid-tick) may be taken over. Commit the claim in its own transaction.
    """
    row = session.execute(select(TickRow).where(TickRow.watch == watch, TickRow.tick == tick)).scalar_one_or_none()
    now = _now()
    if row is None:
        try:
            with session.begin_nested():  # a concurrent claim on PostgreSQL surfaces here as a unique violation
                session.add(
                    TickRow(
                        watch=watch,
                        tick=tick,
                        completed_at=now,
                        flow_run_id=flow_run_id,
                        summary={"status": TICK_RUNNING},
                    )
                )
        except IntegrityError:
            return False
        return True
    if (row.summary or {}).get("status") != TICK_RUNNING:
        return False
    if (flow_run_id is not None and row.flow_run_id == flow_run_id) or now - row.completed_at > stale_after:
        row.completed_at, row.flow_run_id = now, flow_run_id
        return True
    return False


def release_tick(session: Session, watch: str, tick: datetime, flow_run_id: str | None) -> bool:
    """Give up this run's claim on a tick that failed, so that the same tick can run again at once.

    Only a claim still running and held by `flow_run_id` is removed (a completed tick stays completed).
    """
    held = TickRow.flow_run_id.is_(None) if flow_run_id is None else TickRow.flow_run_id == flow_run_id  # type: ignore[union-attr]
    rows = session.execute(select(TickRow).where(TickRow.watch == watch, TickRow.tick == tick, held)).scalars().all()
    released = [r for r in rows if (r.summary or {}).get("status") == TICK_RUNNING]
    for r in released:
        session.delete(r)
    return bool(released)


def mark_tick_done(
    session: Session, watch: str, tick: datetime, flow_run_id: str | None, summary: dict[str, Any]
) -> None:
    summary = json.loads(json.dumps(summary, default=str))
    row = session.execute(select(TickRow).where(TickRow.watch == watch, TickRow.tick == tick)).scalar_one_or_none()
    if row is None:
        session.add(TickRow(watch=watch, tick=tick, completed_at=_now(), flow_run_id=flow_run_id, summary=summary))
    else:  # completing this run's claim
        row.completed_at, row.flow_run_id, row.summary = _now(), flow_run_id, summary


def list_ticks(session: Session, watch: str) -> list[TickRow]:
    return list(session.execute(select(TickRow).where(TickRow.watch == watch).order_by(TickRow.tick)).scalars())


def acquire_lease(
    session: Session, name: str, holder: str, ttl: timedelta, holder_dead: Callable[[str], bool] | None = None
) -> bool:
    """Take or extend the lease `name` for `holder` until now + ttl; False while someone else holds it unexpired.

    Taking an expired lease is one conditional UPDATE, so of two processes racing for it (on
    PostgreSQL too) only one sees its row changed. `holder_dead(other)` may say that the current
    holder is gone (its process no longer exists): its lease is taken over at once the same way.
    Commit it in its own transaction.
    """
    now = _now()
    taken = session.execute(
        update(LeaseRow)
        .where(LeaseRow.name == name, or_(LeaseRow.holder == holder, LeaseRow.expires_at < now))
        .values(holder=holder, expires_at=now + ttl)
    ).rowcount
    if taken:
        return True
    current = session.execute(select(LeaseRow.holder).where(LeaseRow.name == name)).scalar_one_or_none()
    if current is not None:
        if holder_dead is None or not holder_dead(current):
            return False
        return bool(
            session.execute(
                update(LeaseRow)
                .where(LeaseRow.name == name, LeaseRow.holder == current)
                .values(holder=holder, expires_at=now + ttl)
            ).rowcount
        )
    try:
        with session.begin_nested():  # a concurrent first claim surfaces here as a unique violation
            session.add(LeaseRow(name=name, holder=holder, expires_at=now + ttl))
    except IntegrityError:
        return False
    return True


def release_lease(session: Session, name: str, holder: str) -> None:
    session.execute(delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder))


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
            computed_at=_now(),
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
