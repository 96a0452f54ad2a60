"""The audit chain: an append-only, hash-chained record of every run, observation batch, decision,
alert and override, kept in the store's `audit_entry` table.

Each entry's hash is SHA-256 over a canonical JSON document of its own fields (seq, time, kind,
watch, subject, payload) and the previous entry's hash, so changing, deleting or reordering any
entry breaks the chain at that entry, and `verify()` names the first one that broke. Cutting
entries off the end leaves a valid shorter chain; `export_head()` writes the head (seq and hash)
to a file kept elsewhere, and `verify(head=...)` then proves the log still reaches that head.

Appends are serialized across processes: on SQLite every store transaction starts with
`BEGIN IMMEDIATE` (the write lock is taken before the head is read); on PostgreSQL `append()`
takes a transaction-scoped advisory lock first. Write the entry in the same session as the
data it describes, so both commit together or neither does.

The canonical form is hand-written, not RFC 8785 (JCS), on purpose: it is Python's
`json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)` over
UTF-8, and every stored chain was hashed with it. JCS writes numbers the ECMAScript way (`1.0` as
`1`, `1e-07` as `1e-7`) and sorts keys by UTF-16 code units, so a switch would change the hash of
nearly every entry already stored (severities and confidences are floats such as 1.0): old chains
would stop verifying unless every entry carried a canonicalisation version (a migration, and two
hash functions kept forever). The form above is fully specified in that one line, so an outside
verifier can reproduce it; tests/audit/test_audit.py pins it with a known entry hash.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta, timezone
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, insert, select, text
from sqlmodel import Session

from pollwatch.store import AuditRow

GENESIS = "0" * 64
HEAD_FORMAT = "pollwatch-audit-head/1"
_PG_LOCK_KEY = 0x706F6C6C  # "poll": one advisory lock for the audit chain


class AuditKind(StrEnum):
    run_start = "run.start"  # a flow run began: id, flow, deployment, parameters, playbook hash, version
    run_end = "run.end"  # a flow run finished: state and summary
    observations = "observations"  # one batch from one source: request, payload hash, count, gaps
    gaps = "gaps"  # spans without data (never outages by themselves) and operator notices
    anomaly = "anomaly"  # a detector decision: thresholds and inputs, expected vs observed
    incident = "incident"  # a grouping/classification/attribution decision with its evidence
    alert = "alert"  # an alert queued, sent or failed: destination, channel, ts, attempts
    override = "override"  # a responder changed a decision: who, why, what
    response = "response"  # a responder acted from Slack without changing a decision (acknowledged, asked for the
    # draft statement, closed as a false alarm) or was refused (not in the watch's responders)
    report = "report"  # a report or export was produced: file name and its SHA-256


class AuditEntry(BaseModel):
    """One entry of the audit log as read back from the store."""

    seq: int
    time: datetime
    kind: str
    watch: str | None = None
    subject: str | None = None
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json"), "time": format_time(self.time)}


# --- canonical form and hashing -------------------------------------------------------------


def format_time(dt: datetime) -> str:
    """UTC with microseconds and a Z: the one spelling of a time inside hashed documents."""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def plain(value: Any) -> Any:
    """Turn models, enums, times and sets into JSON values, the same way every time."""
    if isinstance(value, BaseModel):
        return plain(value.model_dump(mode="json"))
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in an audit payload; give it a time zone")
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((plain(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf; "no value" is what it means here
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot put a {type(value).__name__} into an audit payload")


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text: equal documents give equal strings."""
    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def entry_hash(
    seq: int, time: datetime, kind: str, watch: str | None, subject: str | None, payload: Any, prev_hash: str
) -> str:
    """The hash an entry must carry: SHA-256 over the canonical JSON of its fields and prev_hash.

    `payload` must already be plain JSON (as stored); `append()` canonicalizes it first.
    """
    doc = {
        "seq": seq,
        "time": format_time(time),
        "kind": kind,
        "watch": watch,
        "subject": subject,
        "payload": payload,
        "prev_hash": prev_hash,
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def row_entry(r: AuditRow) -> AuditEntry:
    return AuditEntry(
        seq=r.seq,
        time=r.time,
        kind=r.kind,
        watch=r.watch,
        subject=r.subject,
        payload=r.payload or {},
        prev_hash=r.prev_hash,
        hash=r.hash,
    )


# --- appending --------------------------------------------------------------------------------


def lock_chain(session: Session) -> None:
    """Hold the audit chain's lock until the transaction ends (a check-then-write stays one step)."""
    _lock_chain(session)


def _lock_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    # SQLite: the session's transaction already began with BEGIN IMMEDIATE (pollwatch.store).


def head(session: Session) -> AuditEntry | None:
    """The newest entry, or None for an empty log."""
    row = session.execute(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).scalar_one_or_none()
    return row_entry(row) if row else None


def append(
    session: Session,
    kind: AuditKind | str,
    watch: str | None,
    subject: str | None,
    payload: Mapping[str, Any] | BaseModel,
    *,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry to the chain (in the caller's transaction) and return it.

    `at` is the entry's time (default: now, UTC, microseconds). The payload is stored exactly in
    its canonical form, so what is read back hashes to what was written.
    """
    kind = kind.value if isinstance(kind, AuditKind) else str(kind)
    if len(kind) > 32:
        raise ValueError(f"audit kind {kind!r} is longer than 32 characters")
    doc = json.loads(canonical_json(payload))
    if not isinstance(doc, dict):
        raise TypeError("an audit payload must be a JSON object")
    when = (at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    seq, prev = _next_link(session)
    digest = entry_hash(seq, when, kind, watch, subject, doc, prev)
    session.execute(
        _INSERT,
        {
            "seq": seq,
            "time": when,
            "kind": kind,
            "watch": watch,
            "subject": subject,
            "payload": doc,
            "prev_hash": prev,
            "hash": digest,
        },
    )
    session.info[_HEAD_KEY] = (_txn(session), seq, digest)
    return AuditEntry(
        seq=seq, time=when, kind=kind, watch=watch, subject=subject, payload=doc, prev_hash=prev, hash=digest
    )


_HEAD_KEY = "pollwatch.audit.head"


def _txn(session: Session) -> Any:
    """The innermost transaction: a rolled-back savepoint must not leave a stale cached head."""
    return session.get_nested_transaction() or session.get_transaction()


_INSERT = insert(AuditRow.__table__)  # built once: compiling a fresh statement per entry costs more than the insert


def _next_link(session: Session) -> tuple[int, str]:
    """(seq, prev_hash) for the next entry. The chain lock is held until the transaction ends, so
    the head read once per transaction stays the head for this transaction's later appends."""
    cached = session.info.get(_HEAD_KEY)
    if cached is not None and cached[0] is not None and cached[0] is _txn(session):
        return cached[1] + 1, cached[2]
    _lock_chain(session)
    last = session.execute(select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)).first()
    return (last[0] + 1, last[1]) if last else (1, GENESIS)


# --- reading ----------------------------------------------------------------------------------


def entries(
    session: Session,
    kind: str | Iterable[str] | None = None,
    watch: str | None = None,
    subject: str | Iterable[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditEntry]:
    """Entries in chain order, filtered by kind(s), watch, subject(s) and entry time [since, until)."""
    stmt = select(AuditRow).order_by(AuditRow.seq)
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else list(kind)
        stmt = stmt.where(AuditRow.kind.in_(kinds))
    if watch:
        stmt = stmt.where(AuditRow.watch == watch)
    if subject is not None:
        subjects = [subject] if isinstance(subject, str) else list(subject)
        stmt = stmt.where(AuditRow.subject.in_(subjects))
    if since:
        stmt = stmt.where(AuditRow.time >= since)
    if until:
        stmt = stmt.where(AuditRow.time < until)
    return [row_entry(r) for r in session.execute(stmt).scalars()]


def count(session: Session) -> int:
    return session.execute(select(func.count()).select_from(AuditRow)).scalar_one()
