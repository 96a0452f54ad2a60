"""Reading the log back as people ask for it: flow runs, incidents as last decided, alerts, and everything
about one incident (what `pollwatch audit runs|incidents|alerts|show` print)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from pollwatch.audit.chain import AuditEntry, AuditKind, entries
from pollwatch.timeutil import parse_time_or_none


def _in_range(t: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    if t is None:
        return True
    return (since is None or t >= since) and (until is None or t < until)


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
                start=parse_time_or_none(inc.get("start")),
                end=parse_time_or_none(inc.get("end")),
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
        created = parse_time_or_none(e.payload.get("created_at")) or e.time
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
        onsets.append((an.get("source"), parse_time_or_none(an.get("start"))))
    batches = []
    if onsets:
        for b in entries(session, kind=AuditKind.observations.value, watch=watch):
            first, last = parse_time_or_none(b.payload.get("first")), parse_time_or_none(b.payload.get("last"))
            if first is None or last is None:
                continue
            if any(src == b.payload.get("source") and t is not None and first <= t <= last for src, t in onsets):
                batches.append(b)
    merged = {e.seq: e for e in [*own, *found, *batches]}
    return [merged[k] for k in sorted(merged)]
