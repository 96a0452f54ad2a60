"""What to record: one function per kind of entry, each building its payload and appending it in the
caller's transaction (used by tasks/record_audit.py, the outbox, overrides, Slack actions and the CLI)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from pollwatch import __version__
from pollwatch.audit.chain import AuditEntry, AuditKind, append, canonical_json, plain, sha256_hex
from pollwatch.store import stored_digest


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
        "gaps": [plain(g) for g in gaps],
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
            "gaps": [plain(g) for g in gaps],
            "notices": [plain(n) for n in notices],
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
