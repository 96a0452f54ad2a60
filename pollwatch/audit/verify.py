"""Checking the log: the chain walked from its first entry (what was altered, deleted, reordered or cut from
the end, given an exported head), and the tables it describes compared with what it says they hold."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from pollwatch import __version__
from pollwatch.audit.chain import (
    GENESIS,
    HEAD_FORMAT,
    AuditEntry,
    AuditKind,
    entries,
    entry_hash,
    format_time,
    head,
    row_entry,
    sha256_hex,
)
from pollwatch.sinks import write_output
from pollwatch.store import AlertRow, AuditRow, IncidentRow, stored_digest, table_digest
from pollwatch.timeutil import parse_time_or_none


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
        yield from (row_entry(r) for r in rows)
        before = rows[-1].seq


def check_data(session: Session, watch: str | None = None, max_problems: int = 50) -> list[Problem]:
    """Compare the store's outbox and incident tables with what the log says they should hold.

    The chain proves the log itself; this proves the tables it describes were not changed behind
    its back: every logged alert is in the outbox with the same text (SHA-256), destination and
    incident, and every logged incident is stored with the kind, start and cause last decided
    (or last set by an override).
    """
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
        start = parse_time_or_none(inc.get("start"))
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
