"""The audit log: an append-only, hash-chained record of every run, observation batch, decision,
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
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, insert, select, text
from sqlmodel import Session

from pollwatch import __version__
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


def _plain(value: Any) -> Any:
    """Turn models, enums, times and sets into JSON values, the same way every time."""
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(mode="json"))
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in an audit payload; give it a time zone")
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf; "no value" is what it means here
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot put a {type(value).__name__} into an audit payload")


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text: equal documents give equal strings."""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


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


def _row_entry(r: AuditRow) -> AuditEntry:
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
    return _row_entry(row) if row else None


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


# --- verifying --------------------------------------------------------------------------------


@dataclass
class Problem:
    """One break in the chain, at the entry `seq` (the first entry that is not as written)."""

    seq: int
    what: str  # altered | deleted | reordered | inserted | truncated
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "what": self.what, "message": self.message}


@dataclass
class Verification:
    entries: int = 0
    head_seq: int | None = None
    head_hash: str | None = None
    problems: list[Problem] = field(default_factory=list)
    checked_head: dict[str, Any] | None = None
    checked: list[str] = field(default_factory=list)  # what was compared, in words
    not_checked: list[str] = field(default_factory=list)  # what was not, and why

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "checked_head": self.checked_head,
            "first_problem": self.first.to_json() if self.first else None,
            "problems": [p.to_json() for p in self.problems],
            "checked": self.checked,
            "not_checked": self.not_checked,
        }


def _iter_rows(session: Session, batch: int = 5000) -> Iterator[Any]:
    """All entries in seq order as plain rows, a batch at a time (the log may be large)."""
    table = AuditRow.__table__
    after = None
    while True:
        stmt = select(table).order_by(table.c.seq).limit(batch)
        if after is not None:
            stmt = stmt.where(table.c.seq > after)
        rows = session.execute(stmt).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def verify(session: Session, head_doc: Mapping[str, Any] | None = None, max_problems: int = 20) -> Verification:
    """Walk the chain from the first entry; report where it was altered, deleted or reordered.

    With `head_doc` (from `export_head`), also check that the log still reaches that head, so
    entries cut from the end are noticed.
    """
    result = Verification()
    # Where each stored hash sits, to tell an entry moved elsewhere from one changed in place.
    position = {h: s for s, h in session.execute(select(AuditRow.seq, AuditRow.hash))}
    expected_seq, prev = 1, GENESIS

    def problem(seq: int, what: str, message: str) -> None:
        if len(result.problems) < max_problems:
            result.problems.append(Problem(seq, what, message))

    for r in _iter_rows(session):
        result.entries += 1
        content_ok = entry_hash(r.seq, r.time, r.kind, r.watch, r.subject, r.payload or {}, r.prev_hash) == r.hash
        if r.seq > expected_seq:
            gap = f"{expected_seq}" if r.seq == expected_seq + 1 else f"{expected_seq}..{r.seq - 1}"
            problem(expected_seq, "deleted", f"entry {gap} missing: the log jumps from {expected_seq - 1} to {r.seq}")
        elif r.seq < expected_seq:  # cannot happen with a primary key, but a copied log might
            problem(r.seq, "reordered", f"entry {r.seq} appears again after entry {expected_seq - 1}")
        if not content_ok:
            moved_from = position.get(r.prev_hash)
            if moved_from is not None and moved_from != r.seq - 1:
                problem(
                    r.seq,
                    "reordered",
                    f"entry {r.seq} holds the entry that was written after the one now at {moved_from}: entries "
                    "were reordered",
                )
            elif moved_from is None and r.prev_hash != GENESIS:
                problem(
                    r.seq,
                    "deleted",
                    f"entry {r.seq} was written after an entry that is no longer in the log: entries were deleted "
                    "and the rest renumbered",
                )
            else:
                problem(
                    r.seq,
                    "altered",
                    f"entry {r.seq} ({r.kind}, {r.subject or '-'}) does not match its hash: its content was altered",
                )
        elif r.prev_hash != prev and r.seq == expected_seq:
            # This entry is intact, so the one before it was rewritten (hash recomputed) or replaced.
            problem(
                r.seq - 1,
                "altered",
                f"entry {r.seq - 1} was rewritten: entry {r.seq} no longer links to it (prev_hash differs)",
            )
        prev, expected_seq = r.hash, r.seq + 1
        result.head_seq, result.head_hash = r.seq, r.hash
    if head_doc is not None:
        result.checked_head = dict(head_doc)
        want_seq, want_hash = int(head_doc["seq"]), str(head_doc["hash"])
        if want_seq == 0:
            pass  # exported from an empty log: every log reaches it
        elif (result.head_seq or 0) < want_seq:
            problem(
                result.head_seq + 1 if result.head_seq else 1,
                "truncated",
                f"the log ends at entry {result.head_seq or 0} but the exported head is entry {want_seq}: "
                f"{want_seq - (result.head_seq or 0)} entries were cut from the end",
            )
        else:
            stored = position.get(want_hash)
            if stored != want_seq:
                problem(
                    want_seq, "altered", f"entry {want_seq} no longer carries the exported head hash {want_hash[:12]}…"
                )
    return result


def verify_store(session: Session, head_doc: Mapping[str, Any] | None = None, data: bool = True) -> Verification:
    """`verify` plus, by default, `check_data` and `check_observations`; says in `checked` and
    `not_checked` what was proven and what was not (`pollwatch audit verify` prints both)."""
    v = verify(session, head_doc)
    v.checked.append(f"the chain of {v.entries} entries (altered, deleted, reordered or inserted entries)")
    if head_doc is not None:
        v.checked.append(
            f"that the log still reaches the exported head, entry {head_doc.get('seq')} (nothing cut from the end)"
        )
    else:
        v.not_checked.append(
            "entries cut from the end of the log: only `--head FILE` (from `audit export-head`) catches that"
        )
    if not data:
        v.not_checked.append("the alert, incident and observation tables against the log (--chain-only)")
        return v
    v.problems.extend(check_data(session))
    v.checked.append("the outbox and incident tables against the log")
    note = check_observations(session, v.problems)
    (v.not_checked if note.startswith("not checked") else v.checked).append(note)
    return v


def check_observations(session: Session, problems: list[Problem]) -> str:
    """Recompute the observation table's digest and compare it with the last recorded batch's.

    Appends a problem when they differ; returns one sentence saying what was (or was not) checked.
    """
    from pollwatch.store import stored_digest, table_digest

    last = None
    for e in _entries_desc(session, AuditKind.observations.value):
        if "table_digest" in e.payload:
            last = e
            break
    now = table_digest(session)
    if last is None:
        if now.rows == 0:
            return "the observation table (empty, as the log says)"
        return (
            f"not checked: the observation table ({now.rows} rows): no batch in the log carries a table digest "
            "(written before this check existed, or only by unrecorded writes)"
        )
    want, rows = last.payload["table_digest"], last.payload.get("table_rows")
    if now.hexdigest() != want or now.rows != rows:
        running = stored_digest(session)
        how = (
            "written after it without an audit record"
            if running is not None and running == now
            else "edited, deleted or added behind pollwatch's back"
        )
        problems.append(
            Problem(
                last.seq,
                "data",
                f"observations: the table ({now.rows} rows) no longer matches the digest entry "
                f"{last.seq} recorded ({rows} rows): observations were {how}",
            )
        )
    return f"the observation table ({now.rows} rows) against the digest recorded by entry {last.seq}"


def _entries_desc(session: Session, kind: str, batch: int = 200) -> Iterator[AuditEntry]:
    before = None
    while True:
        stmt = select(AuditRow).where(AuditRow.kind == kind).order_by(AuditRow.seq.desc()).limit(batch)
        if before is not None:
            stmt = stmt.where(AuditRow.seq < before)
        rows = list(session.execute(stmt).scalars())
        if not rows:
            return
        yield from (_row_entry(r) for r in rows)
        before = rows[-1].seq


def check_data(session: Session, watch: str | None = None, max_problems: int = 50) -> list[Problem]:
    """Compare the store's outbox and incident tables with what the log says they should hold.

    The chain proves the log itself; this proves the tables it describes were not changed behind
    its back: every logged alert is in the outbox with the same text (SHA-256), destination and
    incident, and every logged incident is stored with the kind, start and cause last decided
    (or last set by an override).
    """
    from pollwatch.store import AlertRow, IncidentRow

    problems: list[Problem] = []

    def problem(seq: int, message: str) -> None:
        if len(problems) < max_problems:
            problems.append(Problem(seq, "data", message))

    for e in entries(session, kind=AuditKind.alert.value, watch=watch):
        if e.payload.get("action") != "queued":
            continue
        row = session.get(AlertRow, e.payload.get("alert_id"))
        if row is None:
            problem(e.seq, f"alert {e.payload.get('alert_id')} (entry {e.seq}) is missing from the outbox")
        elif sha256_hex(row.text or "") != e.payload.get("text_hash"):
            problem(e.seq, f"alert {row.id}: its text in the outbox differs from what entry {e.seq} recorded")
        elif (row.destination, row.incident_id) != (e.payload.get("destination"), e.payload.get("incident_id")):
            problem(e.seq, f"alert {row.id}: destination or incident differs from entry {e.seq}")
    last: dict[str, tuple[int, dict[str, Any]]] = {}
    cause_set: dict[str, tuple[int, str]] = {}
    for e in entries(session, kind=[AuditKind.incident.value, AuditKind.override.value], watch=watch):
        if e.subject is None:
            continue
        if e.kind == AuditKind.incident.value:
            last[e.subject] = (e.seq, e.payload.get("incident", {}))
            cause_set.pop(e.subject, None)  # a later decision carries any override in its own cause
        else:
            change = (e.payload.get("changes") or {}).get("cause")
            if isinstance(change, list) and len(change) == 2:
                cause_set[e.subject] = (e.seq, change[1])
    for inc_id, (seq, inc) in last.items():
        row = session.get(IncidentRow, inc_id)
        if row is None:
            problem(seq, f"incident {inc_id} (entry {seq}) is missing from the incident table")
            continue
        want_cause = cause_set.get(inc_id, (seq, inc.get("cause")))
        start = _parse(inc.get("start"))
        if row.kind != inc.get("kind") or (start is not None and row.start != start):
            problem(seq, f"incident {inc_id}: kind or start in the table differs from entry {seq}")
        elif row.cause != want_cause[1]:
            problem(
                want_cause[0],
                f"incident {inc_id}: cause {row.cause!r} in the table, but entry {want_cause[0]} says "
                f"{want_cause[1]!r}",
            )
    return problems


def export_head(session: Session, path: str | Path | None = None) -> dict[str, Any]:
    """The chain head as a small JSON document (written to `path` if given): keep it elsewhere."""
    last = head(session)
    doc = {
        "format": HEAD_FORMAT,
        "seq": last.seq if last else 0,
        "hash": last.hash if last else GENESIS,
        "time": format_time(last.time) if last else None,
        "exported_at": format_time(datetime.now(timezone.utc)),
        "pollwatch_version": __version__,
    }
    if path is not None:
        from pollwatch.sinks import write_output

        write_output(path, json.dumps(doc, indent=2) + "\n")
    return doc


def load_head(path: str | Path) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such head file (write one with `pollwatch audit export-head FILE`)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not a head file: {exc.msg}") from None
    if not isinstance(doc, dict) or doc.get("format") != HEAD_FORMAT or "seq" not in doc or "hash" not in doc:
        raise ValueError(f"{path}: not a pollwatch audit head file (expected format {HEAD_FORMAT!r} with seq and hash)")
    return doc


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
    return [_row_entry(r) for r in session.execute(stmt).scalars()]


def count(session: Session) -> int:
    return session.execute(select(func.count()).select_from(AuditRow)).scalar_one()


# --- what to record (payload builders used by tasks/record.py and the CLI) -------------------


def record_run_start(
    session: Session,
    *,
    watch: str | None,
    flow_run_id: str | None,
    flow: str,
    deployment: str | None,
    parameters: Mapping[str, Any],
    playbook_hash: str | None,
    at: datetime | None = None,
) -> AuditEntry:
    """A flow run began: what ran, with which inputs and which playbook content."""
    return append(
        session,
        AuditKind.run_start,
        watch,
        flow_run_id,
        {
            "flow_run_id": flow_run_id,
            "flow": flow,
            "deployment": deployment,
            "parameters": _safe_params(parameters),
            "playbook_hash": playbook_hash,
            "pollwatch_version": __version__,
        },
        at=at,
    )


def record_run_end(
    session: Session,
    *,
    watch: str | None,
    flow_run_id: str | None,
    flow: str,
    state: str,
    summary: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    return append(
        session,
        AuditKind.run_end,
        watch,
        flow_run_id,
        {
            "flow_run_id": flow_run_id,
            "flow": flow,
            "state": state,
            "summary": dict(summary or {}),
        },
        at=at,
    )


_SECRET_WORDS = ("token", "secret", "password", "webhook", "key")


def _safe_params(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Flow parameters for the record, with anything that looks like a credential masked."""
    out: dict[str, Any] = {}
    for k, v in parameters.items():
        if any(w in k.lower() for w in _SECRET_WORDS) and v is not None:
            out[k] = "***"
        elif hasattr(v, "get_secret_value"):
            out[k] = "***"
        else:
            try:
                out[k] = json.loads(canonical_json(v))
            except TypeError:
                out[k] = repr(v)
    return out


def observations_hash(observations: Iterable[Any]) -> str:
    """SHA-256 over observations, one line each, sorted: unix time, source, signal, entity key,
    repr(value), count, separated by U+001F. Order-independent; stored rows give the same hash."""
    lines = sorted(
        f"{o.time.timestamp():.0f}\x1f{o.source}\x1f{o.signal}\x1f{o.entity_key}\x1f{o.value!r}\x1f{o.count}"
        for o in observations
    )
    return sha256_hex("\n".join(lines))


def observation_batch_payload(
    source: str,
    observations: Iterable[Any],
    gaps: Iterable[Any] = (),
    requests: Iterable[str] | None = None,
    window: tuple[datetime, datetime] | None = None,
) -> dict[str, Any]:
    """Summarize one source's batch: requests, payload hashes, counts per signal, time span, gaps.

    `observations_hash` is SHA-256 over the batch's observations, one line each (sorted), so the
    stored observations can later be checked against the record (see `observations_hash`).
    """
    obs = list(observations)
    signals: dict[str, int] = {}
    reqs: set[str] = set(requests or ())
    hashes: set[str] = set()
    nulls = 0
    for o in obs:
        signals[o.signal] = signals.get(o.signal, 0) + 1
        if o.value is None:
            nulls += 1
        if o.provenance is not None:
            if o.provenance.request:
                reqs.add(o.provenance.request)
            if o.provenance.payload_hash:
                hashes.add(o.provenance.payload_hash)
    times = [o.time for o in obs]
    payload: dict[str, Any] = {
        "source": source,
        "count": len(obs),
        "no_data": nulls,
        "signals": signals,
        "first": min(times) if times else None,
        "last": max(times) if times else None,
        "requests": sorted(reqs)[:50],
        "requests_total": len(reqs),
        "payload_hashes": sorted(hashes)[:50],
        "observations_hash": observations_hash(obs),
        "gaps": [_plain(g) for g in gaps],
    }
    if window:
        payload["window"] = {"from": window[0], "until": window[1]}
    return payload


def record_observations(
    session: Session,
    *,
    watch: str | None,
    source: str,
    observations: Iterable[Any],
    gaps: Iterable[Any] = (),
    requests: Iterable[str] | None = None,
    window: tuple[datetime, datetime] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """One source's batch, after it was upserted in this session: with the observation table's
    digest as it now stands (`table_digest`, `table_rows`; see pollwatch.digest), which
    `check_data` later compares with the table recomputed row by row."""
    from pollwatch.store import stored_digest

    payload = observation_batch_payload(source, observations, gaps, requests, window)
    digest = stored_digest(session)
    if digest is not None:
        payload["table_digest"], payload["table_rows"] = digest.hexdigest(), digest.rows
    return append(session, AuditKind.observations, watch, source, payload, at=at)


def record_observation_batches(
    session: Session, *, watch: str | None, observations: Iterable[Any], requests: Iterable[str] | None = None
) -> list[AuditEntry]:
    """`record_observations` for each source of a mixed batch (one entry per source, sorted by source)."""
    by_source: dict[str, list[Any]] = {}
    for o in observations:
        by_source.setdefault(o.source, []).append(o)
    return [
        record_observations(session, watch=watch, source=source, observations=batch, requests=requests)
        for source, batch in sorted(by_source.items())
    ]


def record_gaps(
    session: Session,
    *,
    watch: str | None,
    gaps: Iterable[Any] = (),
    notices: Iterable[Any] = (),
    at: datetime | None = None,
) -> AuditEntry:
    """Data gaps found (a source silent for an entity) and operator notices, as one entry."""
    gaps, notices = list(gaps), list(notices)
    return append(
        session,
        AuditKind.gaps,
        watch,
        None,
        {
            "gaps": [_plain(g) for g in gaps],
            "notices": [_plain(n) for n in notices],
            "sources": sorted({g.source for g in gaps} | {n.source for n in notices}),
        },
        at=at,
    )


def _signal_thresholds(watch_cfg: Any, signal: str) -> dict[str, Any] | None:
    cfg = getattr(watch_cfg, "signals", {}).get(signal) if watch_cfg is not None else None
    return cfg.model_dump(mode="json") if cfg is not None else None


def record_anomaly_event(
    session: Session, *, event: Any, watch_cfg: Any = None, at: datetime | None = None
) -> AuditEntry:
    """A detector decision (AnomalyEvent): the anomaly, its inputs, and the thresholds in force."""
    a = event.anomaly
    return append(
        session,
        AuditKind.anomaly,
        a.watch,
        a.id,
        {
            "change": event.change,
            "tick": event.tick,
            "anomaly": a.model_dump(mode="json"),
            "thresholds": _signal_thresholds(watch_cfg, a.signal),
        },
        at=at,
    )


def record_incident_event(
    session: Session, *, event: Any, watch_cfg: Any = None, at: datetime | None = None
) -> AuditEntry:
    """A grouping/classification/attribution decision (IncidentEvent) with its evidence and rules."""
    inc = event.incident
    rules = None
    if watch_cfg is not None:
        rules = {
            "classification": watch_cfg.classification.model_dump(mode="json"),
            "attribution": watch_cfg.attribution.model_dump(mode="json"),
        }
    return append(
        session,
        AuditKind.incident,
        inc.watch,
        inc.id,
        {
            "change": event.change,
            "tick": event.tick,
            "reasons": list(event.reasons),
            "incident": inc.model_dump(mode="json"),
            "rules": rules,
        },
        at=at,
    )


def split_remote_ref(ref: str | None) -> tuple[str | None, str | None, str | None]:
    """(transport, channel, ts) from a delivery reference such as `slack:C123:1718.0001[:1718.0002]`.

    The ts is the message's own (the reply's when the alert went into a thread).
    """
    if not ref:
        return None, None, None
    parts = ref.split(":")
    if len(parts) in (3, 4):
        return parts[0], parts[1], parts[-1]
    return parts[0], None, None


def record_alert(
    session: Session,
    *,
    alert: Any,
    action: str,
    remote_ref: str | None = None,
    channel: str | None = None,
    ts: str | None = None,
    attempts: int | None = None,
    error: str | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """An alert was queued, sent or failed: destination, Slack channel and ts, attempts, error.

    `alert` is an Alert or the store's alert row (anything with the Alert fields).
    """
    transport, ref_channel, ref_ts = split_remote_ref(remote_ref)
    return append(
        session,
        AuditKind.alert,
        alert.watch,
        alert.incident_id,
        {
            "action": action,  # queued | sent | failed | retry
            "alert_id": alert.id,
            "incident_id": alert.incident_id,
            "event": alert.event,
            "sequence": alert.sequence,
            "destination": alert.destination,
            "created_at": alert.created_at,
            "transport": transport,
            "channel": channel or ref_channel,
            "ts": ts or ref_ts,
            "remote_ref": remote_ref,
            "attempts": alert.attempts if attempts is None else attempts,
            "error": error,
            "text_hash": sha256_hex(alert.text or ""),
        },
        at=at,
    )


def record_override(
    session: Session,
    *,
    watch: str,
    incident_id: str,
    who: str,
    why: str,
    changes: Mapping[str, Any],
    at: datetime | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """A responder overrode a decision: who, why and what changed (field: [before, after]); `details`
    say where it came from (a Slack action: user id, action, message)."""
    if not who.strip() or not why.strip():
        raise ValueError("an override needs who made it and why")
    return append(
        session,
        AuditKind.override,
        watch,
        incident_id,
        {"who": who, "why": why, "changes": dict(changes), **({"details": dict(details)} if details else {})},
        at=at,
    )


def record_response(
    session: Session,
    *,
    watch: str,
    incident_id: str,
    action: str,
    who: str,
    details: Mapping[str, Any],
    at: datetime | None = None,
) -> AuditEntry:
    """A responder acted on an incident from Slack (pollwatch.responders): who, which action, and its details."""
    return append(
        session, AuditKind.response, watch, incident_id, {"action": action, "who": who, **dict(details)}, at=at
    )


def override_incident(
    session: Session,
    incident_id: str,
    cause: str,
    who: str,
    why: str,
    at: datetime | None = None,
    details: Mapping[str, Any] | None = None,
) -> Any:
    """A responder sets an incident's cause: saved on the incident (later ticks keep it) and logged."""
    from pollwatch import store
    from pollwatch.attribute import apply_override
    from pollwatch.models import Cause

    inc = store.get_incident(session, incident_id)
    if inc is None:
        raise KeyError(f"no incident {incident_id!r} (list them with `pollwatch audit incidents`)")
    try:
        new_cause = Cause(cause)
    except ValueError:
        raise ValueError(f"unknown cause {cause!r}: expected one of {', '.join(c.value for c in Cause)}") from None
    when = at or datetime.now(timezone.utc)
    updated = apply_override(inc, new_cause, who, why, when)
    if details and details.get("user_id"):  # from Slack: the root message shows who, as a mention
        updated.override["user_id"] = details["user_id"]
    store.save_incidents(session, [updated])
    changes = {
        "cause": [inc.cause.value, updated.cause.value],
        "cause_confidence": [inc.cause_confidence, updated.cause_confidence],
        "version": [inc.version, updated.version],
    }
    record_override(
        session, watch=inc.watch, incident_id=inc.id, who=who, why=why, at=when, changes=changes, details=details
    )
    return updated


def record_report(
    session: Session,
    *,
    watch: str | None,
    path: str | Path,
    what: str,
    params: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """A report or export was written: its name and SHA-256, so a shared copy can be checked."""
    data = Path(path).read_bytes()
    return append(
        session,
        AuditKind.report,
        watch,
        what,
        {
            "file": Path(path).name,
            "sha256": sha256_hex(data),
            "bytes": len(data),
            "params": dict(params or {}),
        },
        at=at,
    )


def record_report_failure(
    session: Session,
    *,
    watch: str | None,
    path: str | Path,
    what: str,
    error: str,
    params: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """A report or export could not be written (a missing folder, a directory, a full disk): where and why."""
    return append(
        session,
        AuditKind.report,
        watch,
        what,
        {
            "file": str(path)[-255:],
            "written": False,
            "error": error[:1000],
            "params": dict(params or {}),
        },
        at=at,
    )


# --- queries (what `pollwatch audit runs|incidents|alerts|show` print) --------------------------


def _in_range(t: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    if t is None:
        return True
    return (since is None or t >= since) and (until is None or t < until)


def _parse(t: Any) -> datetime | None:
    if t is None or isinstance(t, datetime):
        return t
    return datetime.fromisoformat(str(t).replace("Z", "+00:00"))


def runs(
    session: Session, watch: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Flow runs from their start and end entries, oldest first; filtered on the run's start time."""
    out: dict[str, dict[str, Any]] = {}
    for e in entries(session, kind=[AuditKind.run_start.value, AuditKind.run_end.value], watch=watch):
        key = e.subject or f"seq-{e.seq}"
        run = out.setdefault(
            key,
            {
                "flow_run_id": e.subject,
                "watch": e.watch,
                "flow": e.payload.get("flow"),
                "deployment": None,
                "started": None,
                "ended": None,
                "state": "running",
                "playbook_hash": None,
                "pollwatch_version": None,
                "parameters": {},
                "summary": {},
                "entries": [],
            },
        )
        run["entries"].append(e.seq)
        if e.kind == AuditKind.run_start.value:
            run.update(
                started=e.time,
                deployment=e.payload.get("deployment"),
                parameters=e.payload.get("parameters", {}),
                playbook_hash=e.payload.get("playbook_hash"),
                pollwatch_version=e.payload.get("pollwatch_version"),
            )
        else:
            run.update(ended=e.time, state=e.payload.get("state"), summary=e.payload.get("summary", {}))
    return [r for r in out.values() if _in_range(r["started"] or r["ended"], since, until)]


def incidents(
    session: Session, watch: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Each incident as last decided in the log, with how many decisions, alerts and overrides it had.

    Filtered on the incident's own window [start, end) overlapping [since, until).
    """
    out: dict[str, dict[str, Any]] = {}
    for e in entries(
        session, kind=[AuditKind.incident.value, AuditKind.alert.value, AuditKind.override.value], watch=watch
    ):
        if e.subject is None:
            continue
        row = out.setdefault(
            e.subject,
            {
                "id": e.subject,
                "watch": e.watch,
                "decisions": 0,
                "alerts_queued": 0,
                "alerts_sent": 0,
                "alerts_failed": 0,
                "overrides": 0,
                "first_entry": e.seq,
                "last_entry": e.seq,
            },
        )
        row["last_entry"] = e.seq
        if e.kind == AuditKind.incident.value:
            inc = e.payload.get("incident", {})
            row["decisions"] += 1
            row.update(
                kind=inc.get("kind"),
                status=inc.get("status"),
                start=_parse(inc.get("start")),
                end=_parse(inc.get("end")),
                cause=inc.get("cause"),
                cause_confidence=inc.get("cause_confidence"),
                severity=inc.get("severity"),
                scope=inc.get("scope", {}),
                last_change=e.payload.get("change"),
                decided_at=e.time,
            )
        elif e.kind == AuditKind.alert.value:
            action = e.payload.get("action")
            if action == "queued":
                row["alerts_queued"] += 1
            elif action == "sent":
                row["alerts_sent"] += 1
            elif action == "failed":
                row["alerts_failed"] += 1
        else:
            row["overrides"] += 1
    rows = [r for r in out.values() if "kind" in r]
    if since or until:
        rows = [
            r
            for r in rows
            if (until is None or r["start"] < until) and (since is None or r["end"] is None or r["end"] >= since)
        ]
    return sorted(rows, key=lambda r: (r["start"], r["id"]))


def alerts(
    session: Session,
    watch: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    incident: str | None = None,
) -> list[dict[str, Any]]:
    """Alert entries (queued, sent, failed), filtered on the alert's creation time (its tick)."""
    out = []
    for e in entries(session, kind=AuditKind.alert.value, watch=watch, subject=incident):
        created = _parse(e.payload.get("created_at")) or e.time
        if not _in_range(created, since, until):
            continue
        out.append(
            {
                "seq": e.seq,
                "time": e.time,
                "created_at": created,
                "watch": e.watch,
                **{
                    k: e.payload.get(k)
                    for k in (
                        "action",
                        "alert_id",
                        "incident_id",
                        "event",
                        "destination",
                        "channel",
                        "ts",
                        "attempts",
                        "error",
                    )
                },
            }
        )
    return out


def incident_timeline(session: Session, incident_id: str) -> list[AuditEntry]:
    """Everything the log holds about one incident, in chain order: the observation batches and
    anomalies that opened it, each decision, each alert, each override."""
    own = entries(session, subject=incident_id)
    if not own:
        return []
    anomaly_ids: set[str] = set()
    watch = own[0].watch
    for e in own:
        if e.kind == AuditKind.incident.value:
            anomaly_ids.update(e.payload.get("incident", {}).get("anomaly_ids", []))
    found = entries(session, kind=AuditKind.anomaly.value, subject=sorted(anomaly_ids)) if anomaly_ids else []
    # Observation batches of the same source that covered an anomaly's onset.
    onsets = []
    for a in found:
        an = a.payload.get("anomaly", {})
        onsets.append((an.get("source"), _parse(an.get("start"))))
    batches = []
    if onsets:
        for b in entries(session, kind=AuditKind.observations.value, watch=watch):
            first, last = _parse(b.payload.get("first")), _parse(b.payload.get("last"))
            if first is None or last is None:
                continue
            if any(src == b.payload.get("source") and t is not None and first <= t <= last for src, t in onsets):
                batches.append(b)
    merged = {e.seq: e for e in [*own, *found, *batches]}
    return [merged[k] for k in sorted(merged)]
