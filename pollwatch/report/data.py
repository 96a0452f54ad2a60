"""What the report shows, read from the store: incidents with their evidence and anomalies, the charted
signals against the detector's own expectation, alerts, data gaps, blind spots, overrides and the state
of the audit chain (`collect()` -> `ReportData`).

The expectation drawn under a signal is not redrawn here: `pollwatch.detect.expectations()` runs the
signal's own detector (moving median, seasonal, CUSUM or threshold, with its inpainting and warm-up)
over every stored observation of the series, from the first (so its state at the range's start is the
one it had live), and the critical line is `pollwatch.detect.judge.critical_limit()` of that expectation.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlmodel import Session

from pollwatch import __version__, audit, store
from pollwatch.detect import expectations
from pollwatch.detect.judge import critical_limit
from pollwatch.models import Alert, Anomaly, Direction, Gap, Incident, Notice, iso, series_key
from pollwatch.playbook import Watch
from pollwatch.progress import step

Point = tuple[datetime, "float | None"]


class SentAlert(BaseModel):
    alert: Alert
    sent_at: datetime | None = None
    remote_ref: str | None = None
    last_error: str | None = None


class Series(BaseModel):
    """One signal of one entity for a chart: its points (downsampled), the detector's expectation at each
    of those points and the critical threshold it implies."""

    source: str
    signal: str
    entity: str
    direction: Direction
    points: list[Point]
    expected: list[Point]  # the detector's expectation at each point's time (None: not judged)
    threshold: list[Point]
    expected_note: str
    anomalous: bool = False
    incident_ids: list[str] = Field(default_factory=list)


class ReportData(BaseModel):
    watch: Watch
    since: datetime
    until: datetime
    generated_at: datetime
    version: str = __version__
    incidents: list[Incident] = Field(default_factory=list)
    anomalies: dict[str, Anomaly] = Field(default_factory=dict)
    alerts: list[SentAlert] = Field(default_factory=list)
    gaps: list[Gap] = Field(default_factory=list)
    notices: list[Notice] = Field(default_factory=list)
    blind_spots: list[dict[str, Any]] = Field(default_factory=list)
    series: list[Series] = Field(default_factory=list)
    series_omitted: int = 0
    audit: dict[str, Any] = Field(default_factory=dict)
    overrides: list[dict[str, Any]] = Field(default_factory=list)


def _overlaps(start: datetime, end: datetime | None, since: datetime, until: datetime) -> bool:
    return start < until and (end is None or end >= since)


def collect(
    session: Session, watch: Watch, since: datetime, until: datetime, max_charts: int = 24, max_points: int = 600
) -> ReportData:
    """Everything the report shows for `watch` in [since, until), read from the store."""
    name = watch.name
    step("incidents, alerts and gaps")
    incidents = store.list_incidents(session, watch=name, since=since, until=until)
    anomalies = {a.id: a for a in store.list_anomalies(session, name) if _overlaps(a.start, a.end, since, until)}
    inc_ids = {i.id for i in incidents}
    rows = session.execute(
        select(store.AlertRow)
        .where(store.AlertRow.watch == name)
        .order_by(store.AlertRow.created_at, store.AlertRow.sequence)
    ).scalars()
    alerts = [
        SentAlert(alert=store.alert_from_row(r), sent_at=r.sent_at, remote_ref=r.remote_ref, last_error=r.last_error)
        for r in rows
        if r.incident_id in inc_ids or since <= r.created_at < until
    ]
    overrides = [
        {"time": e.time, "incident": e.subject, **e.payload}
        for e in audit.entries(session, kind=audit.AuditKind.override.value, watch=name)
        if e.subject in inc_ids
    ]
    step("verifying the audit chain")
    chain = _chain(session, name)
    series, omitted = _collect_series(session, watch, since, until, anomalies, incidents, max_charts, max_points)
    return ReportData(
        watch=watch,
        since=since,
        until=until,
        generated_at=datetime.now(timezone.utc),
        incidents=incidents,
        anomalies=anomalies,
        alerts=alerts,
        gaps=[g for g in store.list_gaps(session, name) if _overlaps(g.start, g.end, since, until)],
        notices=[n for n in store.list_notices(session, name) if since <= n.time < until],
        blind_spots=_blind_spots(session, name),
        series=series,
        series_omitted=omitted,
        audit=chain,
        overrides=overrides,
    )


def _blind_spots(session: Session, watch: str) -> list[dict[str, Any]]:
    """Series whose baseline had too little data to judge."""
    return [
        {
            "source": b.source,
            "signal": b.signal,
            "entity": b.entity,
            "coverage": b.coverage,
            "reason": b.reason,
            "window": f"{iso(b.window_start)} → {iso(b.window_end)}",
        }
        for b in session.execute(select(store.BaselineRow).where(store.BaselineRow.watch == watch)).scalars()
        if not b.usable
    ]


def _chain(session: Session, watch: str) -> dict[str, Any]:
    v = audit.verify(session)
    return {
        "entries": v.entries,
        "ok": v.ok,
        "head_seq": v.head_seq,
        "head_hash": v.head_hash,
        "first_problem": v.first.message if v.first else None,
        "watch_entries": len(audit.entries(session, watch=watch)),
    }


def _chart_keys(
    session: Session, watch: Watch, since: datetime, until: datetime, anomalous: dict[tuple[str, str, str], set[str]]
) -> list[tuple[str, str, str]]:
    """The series with points in the range, anomalous first, then the widest entities."""
    t = store.ObservationRow.__table__.c
    keys = session.execute(
        select(t.source, t.signal, t.entity)
        .where(t.country == watch.country, t.time >= since, t.time < until)
        .group_by(t.source, t.signal, t.entity)
    ).all()

    def rank(key: tuple[str, str, str]) -> tuple[int, int, str]:
        source, signal, entity = key
        return (0 if key in anomalous else 1, entity.count("/"), f"{entity}:{signal}:{source}")

    return sorted((tuple(k) for k in keys if k[1] in watch.signals), key=rank)  # type: ignore[misc]


def _collect_series(
    session: Session,
    watch: Watch,
    since: datetime,
    until: datetime,
    anomalies: dict[str, Anomaly],
    incidents: list[Incident],
    max_charts: int,
    max_points: int,
) -> tuple[list[Series], int]:
    anomalous: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for inc in incidents:
        for aid in inc.anomaly_ids:
            a = anomalies.get(aid)
            if a is not None:
                anomalous[(a.source, a.signal, a.entity.key)].add(inc.id)
    for a in anomalies.values():
        anomalous.setdefault((a.source, a.signal, a.entity.key), set())
    keys = _chart_keys(session, watch, since, until, anomalous)
    chosen = keys[:max_charts]
    if not chosen:
        return [], len(keys)
    step(f"the detector's expectation of {len(chosen)} series")
    # every stored point of the charted series, from the first: the detector's state at the range's start
    # depends on all of them (windows, inpainting, CUSUM's reference), as it did live
    signals, wanted = {k[1] for k in chosen}, {series_key(*k) for k in chosen}
    obs = [
        o
        for o in store.query_observations(session, country=watch.country, until=until, entities={k[2] for k in chosen})
        if o.signal in signals and o.series_key in wanted
    ]
    expected = expectations(watch, obs)
    points: dict[str, list[Point]] = defaultdict(list)
    for o in obs:
        if o.time >= since:
            points[o.series_key].append((o.time, o.value))
    out = []
    for key in chosen:
        source, signal, entity = key
        cfg = watch.signals[signal]
        skey = series_key(*key)
        shown = downsample(points[skey], since, until, max_points, cfg.direction)
        at = dict(expected.get(skey, []))
        expected_at = [(t, at.get(t)) for t, _ in shown]
        out.append(
            Series(
                source=source,
                signal=signal,
                entity=entity,
                direction=cfg.direction,
                points=shown,
                expected=expected_at,
                threshold=[(t, None if e is None else critical_limit(cfg, e)) for t, e in expected_at],
                expected_note=(
                    f"the {cfg.detector} detector's own expectation (the detector run over every stored point of "
                    f"this series; none before its warm-up); threshold: critical {cfg.critical:g} "
                    f"({'ratio' if cfg.direction is Direction.drop else cfg.mode})"
                ),
                anomalous=key in anomalous,
                incident_ids=sorted(anomalous.get(key, set())),
            )
        )
    return out, len(keys) - len(out)


def downsample(points: list[Point], since: datetime, until: datetime, n: int, direction: Direction) -> list[Point]:
    """At most `n` buckets; each keeps its most anomalous point (the lowest for drops, the highest for rises),
    at that point's own time, so the expectation drawn with it is the one that point was judged against."""
    if len(points) <= n:
        return points
    span = (until - since).total_seconds() / n
    buckets: dict[int, list[Point]] = defaultdict(list)
    for t, v in points:
        buckets[int((t - since).total_seconds() // span)].append((t, v))
    out: list[Point] = []
    pick = min if direction is Direction.drop else max
    for b in sorted(buckets):
        with_data = [(t, v) for t, v in buckets[b] if v is not None]
        out.append(pick(with_data, key=lambda p: p[1]) if with_data else (buckets[b][0][0], None))
    return out
