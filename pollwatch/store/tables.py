"""pollwatch's tables (SQLModel on SQLite or PostgreSQL); Alembic migrations (pollwatch/migrations) create and
change them, never `create_all`. Times are stored aware UTC on both databases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, LargeBinary, UniqueConstraint, select, text
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, Session, SQLModel


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


def ts_column(**kw: Any) -> Any:
    return Field(sa_column=Column(UTCDateTime(), **kw))


def json_column(**kw: Any) -> Any:
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
    time: datetime = ts_column(nullable=False)
    value: float | None = None
    count: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    request: str | None = None
    fetched_at: datetime | None = ts_column(nullable=True)
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
    start: datetime = ts_column(nullable=False)
    end: datetime = ts_column(nullable=False)
    reason: str


class NoticeRow(SQLModel, table=True):
    __tablename__ = "notice"
    id: int | None = Field(default=None, primary_key=True)
    watch: str | None = Field(default=None, index=True, max_length=128)
    time: datetime = ts_column(nullable=False)
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
    computed_at: datetime = ts_column(nullable=False)
    expected: float | None = None
    spread: float | None = None
    window_start: datetime = ts_column(nullable=False)
    window_end: datetime = ts_column(nullable=False)
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
    start: datetime = ts_column(nullable=False)
    end: datetime | None = ts_column(nullable=True)
    detected_at: datetime = ts_column(nullable=False)
    data: dict[str, Any] | None = json_column(nullable=False)


class IncidentRow(SQLModel, table=True):
    __tablename__ = "incident"
    id: str = Field(primary_key=True, max_length=64)
    watch: str = Field(index=True, max_length=128)
    country: str = Field(max_length=2)
    kind: str = Field(max_length=32)
    status: str = Field(max_length=16)
    start: datetime = ts_column(nullable=False)
    end: datetime | None = ts_column(nullable=True)
    detected_at: datetime = ts_column(nullable=False)
    updated_at: datetime = ts_column(nullable=False)
    severity: float = 0.0
    cause: str = Field(max_length=32)
    cause_confidence: float = 0.0
    data: dict[str, Any] | None = json_column(nullable=False)


class AlertRow(SQLModel, table=True):
    __tablename__ = "alert"
    id: str = Field(primary_key=True, max_length=64)
    watch: str = Field(index=True, max_length=128)
    incident_id: str = Field(index=True, max_length=64)
    event: str = Field(max_length=16)
    sequence: int = 0
    destination: str = Field(max_length=128)
    idempotency_key: str = Field(unique=True, max_length=128)
    created_at: datetime = ts_column(nullable=False)
    text: str
    payload: dict[str, Any] | None = json_column(nullable=True)
    state: str = Field(default="pending", max_length=16)
    attempts: int = 0
    sent_at: datetime | None = ts_column(nullable=True)
    remote_ref: str | None = Field(default=None, max_length=255)
    last_error: str | None = None


class WatchStateRow(SQLModel, table=True):
    """The detectors' and the incident grouper's state between ticks (a tick costs O(new data))."""

    __tablename__ = "watch_state"
    watch: str = Field(primary_key=True, max_length=128)
    last_tick: datetime | None = ts_column(nullable=True)
    state: dict[str, Any] | None = json_column(nullable=False)
    updated_at: datetime = ts_column(nullable=False)


class TickRow(SQLModel, table=True):
    """One row per (watch, scheduled tick) that completed: a re-run of a done tick changes nothing."""

    __tablename__ = "tick"
    __table_args__ = (UniqueConstraint("watch", "tick", name="uq_tick"),)
    id: int | None = Field(default=None, primary_key=True)
    watch: str = Field(max_length=128)
    tick: datetime = ts_column(nullable=False)
    completed_at: datetime = ts_column(nullable=False)
    flow_run_id: str | None = Field(default=None, max_length=64)
    summary: dict[str, Any] | None = json_column(nullable=True)


class LeaseRow(SQLModel, table=True):
    """A named claim that expires: while one process holds `deliver:<watch>`, no other delivers that watch's alerts."""

    __tablename__ = "lease"
    name: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=200)
    expires_at: datetime = ts_column(nullable=False)


class UploadRow(SQLModel, table=True):
    """The file id of a chart upload, kept before it is completed: a retry in another process asks Slack about that
    file instead of uploading a second copy (pollwatch.notify.slack). Never the upload URL (it may carry
    credentials)."""

    __tablename__ = "upload"
    key: str = Field(primary_key=True, max_length=400)  # <transport>:<channel id>:<thread ts>:<file name>
    file_id: str = Field(max_length=64)
    recorded_at: datetime = ts_column(nullable=False)


class CorroborationRow(SQLModel, table=True):
    """An observatory's own outage record (pollwatch.models.Corroboration), kept for attribution and auditors."""

    __tablename__ = "corroboration"
    __table_args__ = (Index("ix_corroboration_country_start", "country", "start"),)
    key: str = Field(primary_key=True, max_length=400)  # source:kind:id
    source: str = Field(max_length=64)
    kind: str = Field(max_length=64)
    country: str = Field(max_length=8)
    start: datetime = ts_column(nullable=False)
    end: datetime | None = ts_column(nullable=True)
    first_seen: datetime = ts_column(nullable=False)
    data: dict[str, Any] = json_column(nullable=False)


class AuditRow(SQLModel, table=True):
    """Append-only, hash-chained audit log (see pollwatch.audit)."""

    __tablename__ = "audit_entry"
    seq: int = Field(primary_key=True)
    time: datetime = ts_column(nullable=False)
    kind: str = Field(max_length=32, index=True)
    watch: str | None = Field(default=None, max_length=128, index=True)
    subject: str | None = Field(default=None, max_length=128)
    payload: dict[str, Any] | None = json_column(nullable=False)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


def rows_by_id(session: Session, model: Any, ids: Sequence[str], chunk: int = 500, key: Any = None) -> dict[str, Any]:
    """The stored rows among `ids` (primary key `key`, default `model.id`), looked up a chunk at a time
    (an outage tick updates hundreds at once)."""
    column = model.id if key is None else key
    found: dict[str, Any] = {}
    unique = list(dict.fromkeys(ids))
    for i in range(0, len(unique), chunk):
        for row in session.execute(select(model).where(column.in_(unique[i : i + chunk]))).scalars():
            found[getattr(row, column.key)] = row
    return found
