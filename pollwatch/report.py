"""Reports for auditors and partners: one self-contained HTML file and a #KeepItOn CSV export.

`collect()` gathers, for a watch and a time range, what pollwatch saw and decided: incidents
with their evidence, the signals against their baselines, alerts sent, data gaps and blind spots,
the thresholds in force, and the state of the audit chain. `render_html()` turns that into one
HTML file that opens offline: inline CSS, SVG charts drawn here, no scripts, and a Content
Security Policy that forbids loading anything from elsewhere. `keepiton_rows()` maps incidents
to the vocabulary of Access Now's #KeepItOn STOP dataset (shutdown_type, shutdown_extent,
affected_network, per-service flags, geo_scope) for sharing with the digital-rights community.
"""

from __future__ import annotations

import bisect
import csv
import html
import io
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from statistics import median
from typing import Any, TextIO

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlmodel import Session

from pollwatch import __version__, audit, store
from pollwatch.alerts import KIND_TITLES, scope_line
from pollwatch.models import Alert, Anomaly, Direction, Gap, Incident, IncidentKind, Notice, iso
from pollwatch.playbook import Watch
from pollwatch.sinks import OutputError, csv_cell, output_file, safe_file_name, write_output
from pollwatch.timeutil import format_duration

KIND_COLORS = {
    IncidentKind.nationwide_outage: "#c0392b",
    IncidentKind.regional_outage: "#e67e22",
    IncidentKind.network_outage: "#d35400",
    IncidentKind.service_block: "#8e44ad",
    IncidentKind.circumvention_block: "#2c3e50",
    IncidentKind.throttling: "#16a085",
}


# --- gathering ---------------------------------------------------------------------------------


class SentAlert(BaseModel):
    alert: Alert
    sent_at: datetime | None = None
    remote_ref: str | None = None
    last_error: str | None = None


class Series(BaseModel):
    """One signal of one entity, downsampled for a chart, with its reference baseline."""

    source: str
    signal: str
    entity: str
    direction: Direction
    points: list[tuple[datetime, float | None]]
    baseline: list[tuple[datetime, float | None]]
    threshold: list[tuple[datetime, float | None]]
    baseline_note: str
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
    incidents = store.list_incidents(session, watch=name, since=since, until=until)
    anomalies = {a.id: a for a in store.list_anomalies(session, name) if _overlaps(a.start, a.end, since, until)}
    rows = session.execute(
        select(store.AlertRow)
        .where(store.AlertRow.watch == name)
        .order_by(store.AlertRow.created_at, store.AlertRow.sequence)
    ).scalars()
    inc_ids = {i.id for i in incidents}
    alerts = [
        SentAlert(alert=store.alert_from_row(r), sent_at=r.sent_at, remote_ref=r.remote_ref, last_error=r.last_error)
        for r in rows
        if r.incident_id in inc_ids or since <= r.created_at < until
    ]
    gaps = [g for g in store.list_gaps(session, name) if _overlaps(g.start, g.end, since, until)]
    notices = [n for n in store.list_notices(session, name) if since <= n.time < until]
    blind = [
        {
            "source": b.source,
            "signal": b.signal,
            "entity": b.entity,
            "coverage": b.coverage,
            "reason": b.reason,
            "window": f"{iso(b.window_start)} → {iso(b.window_end)}",
        }
        for b in session.execute(select(store.BaselineRow).where(store.BaselineRow.watch == name)).scalars()
        if not b.usable
    ]
    overrides = [
        {"time": e.time, "incident": e.subject, **e.payload}
        for e in audit.entries(session, kind=audit.AuditKind.override.value, watch=name)
        if e.subject in inc_ids
    ]
    v = audit.verify(session)
    chain = {
        "entries": v.entries,
        "ok": v.ok,
        "head_seq": v.head_seq,
        "head_hash": v.head_hash,
        "first_problem": v.first.message if v.first else None,
        "watch_entries": len(audit.entries(session, watch=name)),
    }
    series, omitted = _collect_series(session, watch, since, until, anomalies, incidents, max_charts, max_points)
    return ReportData(
        watch=watch,
        since=since,
        until=until,
        generated_at=datetime.now(timezone.utc),
        incidents=incidents,
        anomalies=anomalies,
        alerts=alerts,
        gaps=gaps,
        notices=notices,
        blind_spots=blind,
        series=series,
        series_omitted=omitted,
        audit=chain,
        overrides=overrides,
    )


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
    longest = max((s.window for s in watch.signals.values()), default=timedelta(days=1))
    # Plain rows, not Observation models: a report reads every point of weeks of data.
    t = store.ObservationRow.__table__.c
    rows = session.execute(
        select(t.source, t.signal, t.entity, t.time, t.value)
        .where(t.country == watch.country, t.time >= since - longest, t.time < until)
        .order_by(t.time)
    )
    by_series: dict[tuple[str, str, str], list[tuple[datetime, float | None]]] = defaultdict(list)
    for source, signal, entity, time, value in rows:
        by_series[(source, signal, entity)].append((time, value))
    anomalous: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for inc in incidents:
        for aid in inc.anomaly_ids:
            a = anomalies.get(aid)
            if a is not None:
                anomalous[(a.source, a.signal, a.entity.key)].add(inc.id)
    for a in anomalies.values():
        anomalous.setdefault((a.source, a.signal, a.entity.key), set())

    def rank(key: tuple[str, str, str]) -> tuple[int, int, str]:
        source, signal, entity = key
        return (0 if key in anomalous else 1, entity.count("/"), f"{entity}:{signal}:{source}")

    keys = sorted((k for k in by_series if any(t >= since for t, _ in by_series[k])), key=rank)
    out = []
    for key in keys[:max_charts]:
        cfg = watch.signals.get(key[1])
        if cfg is None:
            continue
        points = by_series[key]
        base, thr = _reference_baseline(points, cfg, since, until, max_points)
        shown = _downsample([(t, v) for t, v in points if since <= t < until], since, until, max_points, cfg.direction)
        note = (
            f"moving median of the previous {format_duration(cfg.window)} (the {cfg.detector} detector's expectation); "
            f"threshold: critical {cfg.critical:g} ({cfg.mode})"
        )
        out.append(
            Series(
                source=key[0],
                signal=key[1],
                entity=key[2],
                direction=cfg.direction,
                points=shown,
                baseline=base,
                threshold=thr,
                baseline_note=note,
                anomalous=key in anomalous,
                incident_ids=sorted(anomalous.get(key, set())),
            )
        )
    return out, max(len(keys) - len(out), 0)


def _downsample(
    points: list[tuple[datetime, float | None]], since: datetime, until: datetime, n: int, direction: Direction
) -> list[tuple[datetime, float | None]]:
    """At most `n` buckets; each keeps its most anomalous value (min for drops, max for rises)."""
    if len(points) <= n:
        return points
    span = (until - since).total_seconds() / n
    buckets: dict[int, list[tuple[datetime, float | None]]] = defaultdict(list)
    for t, v in points:
        buckets[int((t - since).total_seconds() // span)].append((t, v))
    out = []
    pick = min if direction is Direction.drop else max
    for b in sorted(buckets):
        vals = [v for _, v in buckets[b] if v is not None]
        out.append((buckets[b][0][0], pick(vals) if vals else None))
    return out


def _reference_baseline(
    points: list[tuple[datetime, float | None]], cfg: Any, since: datetime, until: datetime, n: int
) -> tuple[list[tuple[datetime, float | None]], list[tuple[datetime, float | None]]]:
    """The expected level over time (median of the previous window), and the critical threshold.

    Points judged critical are replaced by the expectation before they enter the history
    (inpainting), as the detector does, so an outage does not drag its own baseline down.
    """
    times: list[float] = []
    values: list[float] = []
    base: list[tuple[datetime, float | None]] = []
    thr: list[tuple[datetime, float | None]] = []
    win = cfg.window.total_seconds()
    every = max((until - since).total_seconds() / n, cfg.step.total_seconds())
    next_emit = since.timestamp()
    for t, v in points:
        ts = t.timestamp()
        lo = bisect.bisect_left(times, ts - win)
        hist = values[lo:]
        expected = median(hist) if len(hist) >= 3 else None
        if v is not None:
            feed = v
            if expected is not None and _critical(cfg, v, expected):
                feed = expected
            times.append(ts)
            values.append(feed)
        if t >= since and ts >= next_emit:
            base.append((t, expected))
            thr.append((t, _threshold(cfg, expected)))
            next_emit = ts + every
    return base, thr


def _threshold(cfg: Any, expected: float | None) -> float | None:
    if expected is None:
        return None
    if cfg.direction is Direction.drop:
        return expected * cfg.critical if cfg.mode == "ratio" else expected - cfg.critical
    return expected * cfg.critical if cfg.mode == "ratio" else expected + cfg.critical


def _critical(cfg: Any, value: float, expected: float) -> bool:
    limit = _threshold(cfg, expected)
    if limit is None:
        return False
    return value < limit if cfg.direction is Direction.drop else value > limit


# --- #KeepItOn export --------------------------------------------------------------------------

KEEPITON_COLUMNS = [
    "country",
    "start_date",
    "end_date",
    "start_utc",
    "end_utc",
    "duration_hours",
    "geo_scope",
    "area",
    "shutdown_type",
    "shutdown_extent",
    "affected_network",
    "facebook",
    "twitter",
    "whatsapp",
    "instagram",
    "telegram",
    "other_services",
    "actual_cause",
    "event",
    "info_link",
    "pollwatch_incident_id",
    "pollwatch_kind",
    "pollwatch_cause",
    "cause_confidence",
    "status",
]
_FLAGGED = ("facebook", "twitter", "whatsapp", "instagram", "telegram")
_EXTENT = {
    IncidentKind.nationwide_outage: ("Shutdown", "full network"),
    IncidentKind.regional_outage: ("Shutdown", "full network"),
    IncidentKind.network_outage: ("Shutdown", "full network"),
    IncidentKind.service_block: ("Service-based", "service-based"),
    IncidentKind.circumvention_block: ("Service-based", "service-based"),
    IncidentKind.throttling: ("Throttling", "throttling"),
}


def _country_name(code: str) -> str:
    import pycountry

    c = pycountry.countries.get(alpha_2=code)
    return getattr(c, "common_name", None) or (c.name if c else code)


def _affected_network(watch: Watch, inc: Incident) -> str:
    """Mobile / Broadband from the watch's provider table (fixed counts as broadband)."""
    types: set[str] = set()
    # No networks named: the incident covers every network of the country (or of its regions).
    providers = [watch.provider(a) for a in inc.scope.asns] if inc.scope.asns else list(watch.providers)
    for p in providers:
        if p is None:
            continue
        types.update({"fixed": ["broadband"], "mobile": ["mobile"]}.get(p.type, ["broadband", "mobile"]))
    for t in inc.scope.network_types:
        types.add("broadband" if t in ("fixed", "broadband") else "mobile" if t == "mobile" else t)
    if not types:
        return (
            "Broadband, Mobile"
            if inc.kind in (IncidentKind.nationwide_outage, IncidentKind.regional_outage)
            else "Unknown"
        )
    return ", ".join(t.capitalize() for t in sorted(types))


def _geo_scope(watch: Watch, inc: Incident) -> tuple[str, str]:
    region_names = {r.code: r.name for r in watch.regions}
    if inc.kind is IncidentKind.nationwide_outage:
        return "National", "Nationwide"
    if inc.kind is IncidentKind.regional_outage or inc.scope.regions:
        names = [region_names.get(r, r) for r in inc.scope.regions]
        return ("Multi-regional" if len(names) > 1 else "Regional"), ", ".join(names)
    if inc.scope.asns and watch.providers and set(inc.scope.asns) >= {p.asn for p in watch.providers}:
        return "National", "Nationwide"
    if inc.scope.providers or inc.scope.asns:
        nets = inc.scope.providers or [watch.provider_name(a) for a in inc.scope.asns]
        return "National", "Networks: " + ", ".join(nets)
    return "National", "Nationwide"


def keepiton_rows(watch: Watch, incidents: list[Incident], shutdowns_only: bool = False) -> list[dict[str, str]]:
    """Incidents as rows in the #KeepItOn STOP vocabulary (one row per incident)."""
    rows = []
    for inc in sorted(incidents, key=lambda i: (i.start, i.id)):
        if shutdowns_only and inc.cause.value != "government_directed":
            continue
        shutdown_type, extent = _EXTENT[inc.kind]
        geo, area = _geo_scope(watch, inc)
        services = {s.lower() for s in inc.scope.services}
        targeted = extent in ("service-based", "throttling")  # a full-network shutdown flags no single service
        flags = {k: ("yes" if targeted and k in services else "no") for k in _FLAGGED}
        others = sorted(s for s in inc.scope.services if s.lower() not in _FLAGGED)
        if inc.kind is IncidentKind.circumvention_block:
            others = [f"VPN/circumvention: {', '.join(others)}"] if others else ["VPN/circumvention tools"]
        hours = round((inc.end - inc.start).total_seconds() / 3600, 2) if inc.end else ""
        local = watch.tz
        rows.append(
            {
                "country": _country_name(inc.country),
                "start_date": inc.start.astimezone(local).date().isoformat(),
                "end_date": inc.end.astimezone(local).date().isoformat() if inc.end else "Ongoing",
                "start_utc": iso(inc.start) or "",
                "end_utc": iso(inc.end) or "",
                "duration_hours": str(hours),
                "geo_scope": geo,
                "area": area,
                "shutdown_type": shutdown_type,
                "shutdown_extent": extent,
                "affected_network": _affected_network(watch, inc),
                **flags,
                "other_services": ", ".join(others),
                "actual_cause": "Elections" if inc.cause.value == "government_directed" else "",
                "event": watch.election or watch.name,
                "info_link": "",
                "pollwatch_incident_id": inc.id,
                "pollwatch_kind": inc.kind.value,
                "pollwatch_cause": inc.cause.value,
                "cause_confidence": f"{inc.cause_confidence:.2f}",
                "status": inc.status,
            }
        )
    return rows


def write_keepiton_csv(rows: list[dict[str, str]], out: TextIO | str | Path) -> None:
    """The rows as CSV; every cell goes through `csv_cell`, so no name can become a spreadsheet formula.

    A path that cannot be written raises `OutputError` (one line)."""
    if isinstance(out, (str, Path)):
        with output_file(out, newline="") as f:
            write_keepiton_csv(rows, f)
        return
    w = csv.DictWriter(out, fieldnames=KEEPITON_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)


# --- summaries for Prefect artifacts -------------------------------------------------------------


def incident_table(data: ReportData) -> list[dict[str, Any]]:
    """One plain row per incident (for a Prefect table artifact or JSON)."""
    sent = defaultdict(int)
    for a in data.alerts:
        if a.alert.state.value == "sent":
            sent[a.alert.incident_id] += 1
    return [
        {
            "id": i.id,
            "kind": i.kind.value,
            "scope": scope_line(i),
            "start": iso(i.start),
            "end": iso(i.end),
            "status": i.status,
            "cause": i.cause.value,
            "confidence": round(i.cause_confidence, 2),
            "severity": round(i.severity),
            "alerts_sent": sent[i.id],
            "episodes": i.pattern.episodes if i.pattern else 1,
        }
        for i in data.incidents
    ]


def markdown_summary(data: ReportData, html_path: str | None = None) -> str:
    w = data.watch
    chain = data.audit
    lines = [
        f"# pollwatch report: {w.name}",
        "",
        f"{w.election or ''} ({w.country}, {w.election_date}). Range {iso(data.since)} → {iso(data.until)}.",
        "",
        f"- Incidents: **{len(data.incidents)}**; alerts: {len(data.alerts)}; data gaps: {len(data.gaps)}; "
        f"blind spots: {len(data.blind_spots)}",
        f"- Audit chain: {chain.get('entries', 0)} entries, "
        + ("verified intact" if chain.get("ok") else f"**BROKEN**: {chain.get('first_problem')}")
        + (f", head entry {chain.get('head_seq')} `{chain.get('head_hash')}`" if chain.get("head_seq") else ""),
        f"- Playbook content hash `{(w.content_hash or '-')[:16]}`, pollwatch {data.version}",
    ]
    if html_path:
        lines.append(f"- HTML report: `{html_path}`")
    lines += ["", "| kind | start (UTC) | end (UTC) | scope | cause |", "|---|---|---|---|---|"]
    for i in data.incidents:
        lines.append(
            f"| {KIND_TITLES[i.kind]} | {iso(i.start)} | {iso(i.end) or 'ongoing'} | {scope_line(i)} | "
            f"{i.cause.value} ({i.cause_confidence:.0%}) |"
        )
    if not data.incidents:
        lines.append("| none | | | | |")
    return "\n".join(lines)


# --- HTML --------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:0;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px;background:#fff}
h1{font-size:24px;margin:8px 0 4px}h2{font-size:19px;border-bottom:2px solid #eee;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f3f3f3}
.scroll{overflow-x:auto}.mono{word-break:break-all}
.meta{color:#555}.ok{color:#1e7e34;font-weight:600}.bad{color:#b00020;font-weight:700}
.card{border:1px solid #ddd;border-left:6px solid #999;padding:8px 12px;margin:10px 0;border-radius:3px}
.kind{font-weight:700}.muted{color:#777}.mono{font-family:ui-monospace,Consolas,monospace;font-size:12px}
svg{max-width:100%;height:auto}.chart{margin:6px 0 14px}svg text{font-family:system-ui,sans-serif}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.sw{display:inline-block;width:18px;height:3px;vertical-align:middle;margin-right:4px}
@media print{main{max-width:none}.card{break-inside:avoid}}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _t(dt: datetime | None, watch: Watch) -> str:
    if dt is None:
        return "ongoing"
    dt = dt.astimezone(timezone.utc)
    local = dt.astimezone(watch.tz)
    return f"{dt:%Y-%m-%d %H:%M} UTC <span class='muted'>({local:%H:%M} local)</span>"


def _fmt(v: float | None) -> str:
    if v is None:
        return "–"
    a = abs(v)
    if a >= 10000:
        return f"{v / 1000:,.0f}k"
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:.1f}"
    return f"{v:.2f}"


class _Axis:
    def __init__(self, since: datetime, until: datetime, x0: float, x1: float):
        self.t0, self.t1 = since.timestamp(), until.timestamp()
        self.x0, self.x1 = x0, x1

    def x(self, dt: datetime) -> float:
        f = (dt.timestamp() - self.t0) / max(self.t1 - self.t0, 1)
        return round(self.x0 + min(max(f, 0.0), 1.0) * (self.x1 - self.x0), 1)

    def ticks(self, watch: Watch) -> list[tuple[float, str]]:
        span = self.t1 - self.t0
        step = next(
            (
                s
                for s in (3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400)
                if span / s <= 10
            ),
            28 * 86400,
        )
        first = self.t0 - self.t0 % step + (step if self.t0 % step else 0)
        out = []
        t = first
        while t <= self.t1:
            dt = datetime.fromtimestamp(t, tz=timezone.utc)
            out.append((self.x(dt), f"{dt:%m-%d %H:%M}" if step < 86400 else f"{dt:%Y-%m-%d}"))
            t += step
        return out


def _svg_time_axis(axis: _Axis, watch: Watch, y: float, top: float) -> str:
    parts = []
    for x, label in axis.ticks(watch):
        parts.append(f"<line x1='{x}' y1='{top}' x2='{x}' y2='{y}' stroke='#eee'/>")
        parts.append(f"<text x='{x}' y='{y + 14}' font-size='10' text-anchor='middle' fill='#666'>{_e(label)}</text>")
    return "".join(parts)


def _svg_milestones(axis: _Axis, watch: Watch, data: ReportData, top: float, bottom: float, labels: bool) -> str:
    parts = []
    for name, at in watch.milestone_times().items():
        if data.since <= at < data.until:
            x = axis.x(at)
            parts.append(
                f"<line x1='{x}' y1='{top}' x2='{x}' y2='{bottom}' stroke='#2980b9' stroke-dasharray='2,3'>"
                f"<title>{_e(name)} {_e(iso(at))}</title></line>"
            )
            if labels:
                parts.append(f"<text x='{x + 2}' y='{top + 9}' font-size='9' fill='#2980b9'>{_e(name)}</text>")
    return "".join(parts)


def timeline_svg(data: ReportData) -> str:
    """Incidents as bars on the report's time range, with milestones and data gaps."""
    w = data.watch
    width, left, right = 1040, 170, 1010
    row = 22
    n = max(len(data.incidents), 1)
    top = 18
    gap_row = top + n * row + 6
    height = gap_row + 36
    axis = _Axis(data.since, data.until, left, right)
    parts = [
        f"<svg class='timeline' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img' aria-label='incident timeline'>"
    ]
    parts.append(_svg_time_axis(axis, w, gap_row + 14, top))
    parts.append(_svg_milestones(axis, w, data, 4, gap_row + 14, labels=True))
    for k, inc in enumerate(data.incidents):
        y = top + k * row
        x0 = axis.x(inc.start)
        x1 = max(axis.x(inc.end or data.until), x0 + 3)
        color = KIND_COLORS[inc.kind]
        parts.append(f"<text x='{left - 6}' y='{y + 14}' font-size='11' text-anchor='end'>{_e(inc.kind.value)}</text>")
        parts.append(
            f"<rect x='{x0}' y='{y + 3}' width='{round(x1 - x0, 1)}' height='{row - 6}' fill='{color}' rx='2'>"
            f"<title>{_e(KIND_TITLES[inc.kind])} {_e(iso(inc.start))} → {_e(iso(inc.end) or 'ongoing')}: "
            f"{_e(scope_line(inc))}</title></rect>"
        )
    if not data.incidents:
        parts.append(f"<text x='{left}' y='{top + 14}' font-size='12' fill='#777'>no incidents in this range</text>")
    parts.append(
        f"<text x='{left - 6}' y='{gap_row + 10}' font-size='11' text-anchor='end' fill='#777'>data gaps</text>"
    )
    for g in data.gaps:
        x0, x1 = axis.x(g.start), axis.x(g.end)
        parts.append(
            f"<rect x='{x0}' y='{gap_row}' width='{max(round(x1 - x0, 1), 1)}' height='12' fill='#bbb'>"
            f"<title>{_e(g.source)} {_e(g.entity)}: {_e(g.reason)}</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _path(axis: _Axis, pts: list[tuple[datetime, float | None]], y: Any) -> str:
    d, pen = [], False
    for t, v in pts:
        if v is None:
            pen = False
            continue
        d.append(f"{'L' if pen else 'M'}{axis.x(t)},{y(v)}")
        pen = True
    return " ".join(d)


def series_svg(data: ReportData, s: Series) -> str:
    """One signal against its baseline and critical threshold, with incident windows and gaps shaded."""
    width, height, left, right, top, bottom = 1040, 170, 60, 1010, 10, 140
    axis = _Axis(data.since, data.until, left, right)
    vals = [v for _, v in s.points if v is not None] + [v for _, v in s.baseline if v is not None]
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    lo = min(lo, 0.0)
    if hi - lo < 1e-9:
        hi = lo + 1.0
    hi += (hi - lo) * 0.05

    def y(v: float) -> float:
        return round(bottom - (min(max(v, lo), hi) - lo) / (hi - lo) * (bottom - top), 1)

    parts = [
        f"<svg class='series' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img' aria-label='{_e(s.signal)} {_e(s.entity)}'>"
    ]
    for inc in data.incidents:
        mine = inc.id in s.incident_ids
        x0, x1 = axis.x(inc.start), axis.x(inc.end or data.until)
        parts.append(
            f"<rect x='{x0}' y='{top}' width='{max(round(x1 - x0, 1), 2)}' height='{bottom - top}' "
            f"fill='{KIND_COLORS[inc.kind]}' fill-opacity='{0.22 if mine else 0.07}'>"
            f"<title>incident {_e(inc.id)} ({_e(inc.kind.value)})</title></rect>"
        )
    for g in data.gaps:
        if g.entity == s.entity and g.source == s.source and (g.signal in (None, s.signal)):
            x0, x1 = axis.x(g.start), axis.x(g.end)
            parts.append(
                f"<rect x='{x0}' y='{bottom}' width='{max(round(x1 - x0, 1), 1)}' height='5' fill='#999'>"
                f"<title>no data: {_e(g.reason)}</title></rect>"
            )
    parts.append(_svg_time_axis(axis, data.watch, bottom, top))
    parts.append(_svg_milestones(axis, data.watch, data, top, bottom, labels=False))
    for frac in (0.0, 0.5, 1.0):
        v = lo + (hi - lo) * frac
        parts.append(
            f"<line x1='{left}' y1='{y(v)}' x2='{right}' y2='{y(v)}' stroke='#f0f0f0'/>"
            f"<text x='{left - 4}' y='{y(v) + 3}' font-size='10' text-anchor='end' fill='#666'>{_e(_fmt(v))}</text>"
        )
    parts.append(f"<line x1='{left}' y1='{bottom}' x2='{right}' y2='{bottom}' stroke='#999'/>")
    thr = _path(axis, s.threshold, y)
    if thr:
        parts.append(f"<path d='{thr}' fill='none' stroke='#c0392b' stroke-width='1' stroke-dasharray='1,3'/>")
    base = _path(axis, s.baseline, y)
    if base:
        parts.append(f"<path d='{base}' fill='none' stroke='#888' stroke-width='1.5' stroke-dasharray='5,3'/>")
    line = _path(axis, s.points, y)
    if line:
        parts.append(f"<path d='{line}' fill='none' stroke='#1f4e79' stroke-width='1.3'/>")
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f"<p class='muted'>{_e(empty)}</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _incident_card(data: ReportData, inc: Incident) -> str:
    w = data.watch
    alerts = [a for a in data.alerts if a.alert.incident_id == inc.id]
    ev_rows = [
        [
            _e(e.name),
            _e(e.supports.value),
            _e(f"{e.weight:+.2f}"),
            _e(e.detail),
            f"<span class='mono'>{_e(', '.join(f'{k}={v}' for k, v in e.numbers.items()))}</span>",
        ]
        for e in inc.evidence
    ]
    anomaly_rows = []
    for aid in inc.anomaly_ids:
        a = data.anomalies.get(aid)
        if a is None:
            continue
        anomaly_rows.append(
            [
                _e(a.source),
                _e(a.signal),
                _e(a.entity.key),
                _e(a.level),
                _t(a.start, w),
                _t(a.end, w),
                _e(_fmt(a.expected)),
                _e(_fmt(a.observed)),
                _e(f"{a.depth:.0%}"),
            ]
        )
    history = "".join(f"<li>{_e(h)}</li>" for h in inc.kind_history) if inc.kind_history else ""
    override = ""
    if inc.override:
        override = f"<p><b>Override</b>: {_e(inc.override)}</p>"
    recurring = ""
    if inc.pattern is not None:
        p = inc.pattern
        ep_rows = [
            [
                str(n),
                _t(e.start, w),
                _t(e.end, w),
                _e(f"{e.local_start}-{e.local_end or '…'}"),
                _e(e.kind.value),
                _e(e.note),
            ]
            for n, e in enumerate(inc.episodes, start=p.episodes - len(inc.episodes) + 1)
        ]
        missed = f"; expected but did not come: {_e(', '.join(p.missed_dates))}" if p.missed_dates else ""
        recurring = (
            f"<h3>Recurring: {p.episodes} episodes, {_e(p.period)} {_e(p.window)} ({_e(p.timezone)})</h3>"
            f"<p class='muted'>One incident for the whole pattern{missed}.</p>"
            + _table(["#", "start", "end", "local window", "kind", "note"], ep_rows, "No episodes.")
        )
    if inc.acknowledged_by:
        override += (
            "<p><b>Acknowledged</b> by "
            + ", ".join(f"{_e(r.get('by'))} at {_e(r.get('at'))}" for r in inc.acknowledged_by)
            + "</p>"
        )
    if inc.false_alarm:
        override += (
            f"<p><b>Closed as a false alarm</b> (not an outage) by {_e(inc.false_alarm.get('by'))} at "
            f"{_e(inc.false_alarm.get('at'))}: {_e(inc.false_alarm.get('why'))}</p>"
        )
    alert_list = "".join(
        f"<li>{_e(a.alert.event)} → {_e(a.alert.destination)} at {_t(a.sent_at or a.alert.created_at, w)} "
        f"({_e(a.alert.state.value)})</li>"
        for a in alerts
    )
    return f"""
<div class="card incident" id="incident-{_e(inc.id)}" data-incident-id="{_e(inc.id)}" style="border-left-color:{KIND_COLORS[inc.kind]}">
<div><span class="kind">{_e(KIND_TITLES[inc.kind])}</span> <span class="mono">{_e(inc.id)}</span>
 <span class="muted">({_e(inc.kind.value)}, {_e(inc.status)})</span></div>
<div>From {_t(inc.start, w)} to {_t(inc.end, w)}; detected {_t(inc.detected_at, w)}</div>
<div>Scope: {_e(scope_line(inc))}; signals {_e(", ".join(inc.scope.signals) or "-")}; share {inc.scope.share:.0%};
 deepest {inc.depth:.0%}; severity {inc.severity_index}/100 ({_e(inc.severity_band)})</div>
<div>Cause: <b>{_e(inc.cause.value)}</b>, confidence {inc.cause_confidence:.0%}</div>
{override}
{recurring}
<h3>Evidence</h3>{_table(["evidence", "supports", "weight", "detail", "numbers"], ev_rows, "No evidence recorded.")}
<h3>Anomalies behind it</h3>{_table(["source", "signal", "entity", "level", "start", "end", "expected", "observed", "depth"], anomaly_rows, "No anomalies recorded in this range.")}
{f"<h3>Classification history</h3><ul>{history}</ul>" if history else ""}
<h3>Alerts</h3>{f"<ul>{alert_list}</ul>" if alert_list else "<p class='muted'>No alerts.</p>"}
</div>"""


def _methodology(w: Watch) -> str:
    phases = [
        [_e(p.name), _e(format_duration(p.start)), _e(format_duration(p.end)), _e(format_duration(p.cadence))]
        for p in w.phases
    ]
    signals = [
        [
            _e(n),
            _e(c.source),
            _e(c.family.value),
            _e(c.direction.value),
            _e(c.detector),
            _e(format_duration(c.window)),
            _e(format_duration(c.warm_up)),
            _e(f"{c.warning:g}"),
            _e(f"{c.critical:g}"),
            _e(c.mode),
            _e(f"{c.min_prediction:g}"),
            _e(str(c.min_count)),
            _e(format_duration(c.min_duration)),
            _e(format_duration(c.recovery)),
            _e(format_duration(c.inpaint_max)),
        ]
        for n, c in w.signals.items()
    ]
    providers = [[_e(f"AS{p.asn}"), _e(p.name), _e(p.type), _e(", ".join(p.regions))] for p in w.providers]
    cls, att, al = w.classification, w.attribution, w.alerts
    return f"""
<h3>Phases (offsets from election day 00:00 {_e(w.timezone)})</h3>
{_table(["phase", "start", "end", "cadence"], phases, "No phases.")}
<h3>Signals and thresholds</h3>
{_table(["signal", "source", "family", "direction", "detector", "window", "warm-up", "warning", "critical", "mode", "min prediction", "min count", "min duration", "recovery", "inpaint max"], signals, "No signals.")}
<p class="muted">Drop signals are anomalous when value/expected falls below the threshold (ratio mode) or
expected − value exceeds it (delta mode); rise signals when value/expected (ratio) or value − expected
(delta) exceeds it. Expected is the median of the signal's window; anomalous points are replaced by the
expectation in the history (inpainting) for at most the inpaint limit.</p>
<h3>Classification and attribution</h3>
<ul><li>nationwide when the country's own series falls with at least {cls.nationwide_share:.0%} of its address space affected (providers and regions weigh their address space)</li>
<li>an incident resolves after {_e(format_duration(cls.recovery))} without open anomalies; anomalies within {_e(format_duration(cls.join_gap))} join one incident</li>
<li>attribution minimum confidence {att.min_confidence:.0%}; weights: {_e(att.weights or "defaults")}</li></ul>
<h3>Alert routing</h3>
<ul><li>channel {_e(al.channel)}, operations {_e(al.ops_channel)}, critical mention {_e(al.mention_critical)} at severity ≥ {al.critical_severity:g}</li>
<li>minimum severity {al.min_severity:g}; at most {al.max_updates_per_hour} updates per hour</li></ul>
<h3>Providers</h3>{_table(["ASN", "name", "type", "regions"], providers, "No providers listed.")}"""


def render_html(data: ReportData) -> str:
    """The whole report as one HTML document (no scripts, no external resources)."""
    w = data.watch
    chain = data.audit
    chain_html = (
        "<span class='ok'>verified intact</span>"
        if chain.get("ok")
        else f"<span class='bad'>BROKEN: {_e(chain.get('first_problem'))}</span>"
    )
    counts = defaultdict(int)
    for i in data.incidents:
        counts[i.kind] += 1
    kinds = ", ".join(f"{n} {KIND_TITLES[k].lower()}" for k, n in counts.items()) or "none"
    inc_rows = [
        [
            f"<a href='#incident-{_e(i.id)}'>{_e(i.id)}</a>",
            _e(i.kind.value),
            _t(i.start, w),
            _t(i.end, w),
            _e(scope_line(i)),
            _e(f"{i.cause.value} ({i.cause_confidence:.0%})"),
            _e(f"{i.severity_index}/100 {i.severity_band}"),
        ]
        for i in data.incidents
    ]
    alert_rows = [
        [
            _t(a.alert.created_at, w),
            _t(a.sent_at, w) if a.sent_at else "–",
            _e(a.alert.event),
            f"<a href='#incident-{_e(a.alert.incident_id)}'>{_e(a.alert.incident_id)}</a>",
            _e(a.alert.destination),
            _e(a.alert.state.value),
            _e(a.alert.attempts),
            f"<span class='mono'>{_e(a.remote_ref or a.last_error or '')}</span>",
        ]
        for a in data.alerts
    ]
    gap_rows = [
        [_e(g.source), _e(g.signal or "-"), _e(g.entity), _t(g.start, w), _t(g.end, w), _e(g.reason)] for g in data.gaps
    ]
    blind_rows = [
        [
            _e(b["source"]),
            _e(b["signal"]),
            _e(b["entity"]),
            _e(f"{b['coverage']:.0%}"),
            _e(b["window"]),
            _e(b["reason"]),
        ]
        for b in data.blind_spots
    ]
    notice_rows = [[_t(n.time, w), _e(n.level.value), _e(n.source), _e(n.message)] for n in data.notices]
    override_rows = [
        [
            _e(iso(o["time"]) if isinstance(o["time"], datetime) else o["time"]),
            _e(o.get("incident")),
            _e(o.get("who")),
            _e(o.get("why")),
            f"<span class='mono'>{_e(o.get('changes'))}</span>",
        ]
        for o in data.overrides
    ]
    charts = []
    for s in data.series:
        tag = " <span class='bad'>anomalous</span>" if s.anomalous else ""
        charts.append(
            f"<div class='chart' data-series='{_e(s.source)}:{_e(s.signal)}:{_e(s.entity)}'>"
            f"<h3>{_e(s.signal)} · {_e(s.entity)} <span class='muted'>({_e(s.source)})</span>{tag}</h3>"
            f"{series_svg(data, s)}<div class='muted'>Baseline: {_e(s.baseline_note)}</div></div>"
        )
    omitted = f"<p class='muted'>{data.series_omitted} more series not drawn.</p>" if data.series_omitted else ""
    legend = (
        "<div class='legend'><span><i class='sw' style='background:#1f4e79'></i>signal</span>"
        "<span><i class='sw' style='background:#888'></i>baseline (expected)</span>"
        "<span><i class='sw' style='background:#c0392b'></i>critical threshold</span>"
        "<span><i class='sw' style='background:#2980b9'></i>milestone</span>"
        "<span><i class='sw' style='background:#bbb'></i>no data</span>"
        "<span>shaded: incident windows (darker where this series was anomalous)</span></div>"
    )
    title = f"pollwatch report — {w.name}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="pollwatch {_e(data.version)}">
<title>{_e(title)}</title><style>{_CSS}</style></head>
<body><main>
<h1>{_e(title)}</h1>
<p class="meta">{_e(w.election or "")} — {_e(w.country)}, election day {_e(w.election_date)} ({_e(w.timezone)}).<br>
Range {_t(data.since, w)} to {_t(data.until, w)}. Generated {_e(iso(data.generated_at))} by pollwatch {_e(data.version)}.<br>
Playbook content hash <span class="mono">{_e(w.content_hash or "-")}</span>.<br>
Audit chain: {_e(chain.get("entries", 0))} entries ({_e(chain.get("watch_entries", 0))} for this watch), {chain_html};
head entry {_e(chain.get("head_seq") or "-")} <span class="mono">{_e(chain.get("head_hash") or "-")}</span>.</p>

<h2 id="summary">Summary</h2>
<p><b id="incident-count">{len(data.incidents)}</b> incidents: {_e(kinds)}. {len(data.alerts)} alerts,
{len(data.gaps)} data gaps, {len(data.blind_spots)} blind spots, {len(data.overrides)} responder overrides.</p>

<h2 id="timeline">Timeline</h2>
{timeline_svg(data)}
{_table(["incident", "kind", "start", "end", "scope", "cause (confidence)", "severity"], inc_rows, "No incidents in this range.")}

<h2 id="incidents">Incidents</h2>
{"".join(_incident_card(data, i) for i in data.incidents) or "<p class='muted'>No incidents in this range.</p>"}

<h2 id="signals">Signals against their baselines</h2>
{legend}
{"".join(charts) or "<p class='muted'>No observations stored for this range.</p>"}
{omitted}

<h2 id="alerts">Alerts sent</h2>
{_table(["created", "sent", "event", "incident", "destination", "state", "attempts", "reference / error"], alert_rows, "No alerts.")}

<h2 id="overrides">Responder overrides</h2>
{_table(["time", "incident", "who", "why", "changes"], override_rows, "No overrides.")}

<h2 id="gaps">Data gaps and blind spots</h2>
<p class="muted">A gap is a span where a source should have produced data and did not: missing data is
never counted as an outage. A blind spot is a series whose baseline had too little data to judge.</p>
<h3>Data gaps</h3>
{_table(["source", "signal", "entity", "from", "to", "reason"], gap_rows, "No data gaps recorded.")}
<h3>Blind spots</h3>
{_table(["source", "signal", "entity", "coverage", "baseline window", "reason"], blind_rows, "No blind spots recorded.")}
<h3>Operator notices</h3>
{_table(["time", "level", "source", "message"], notice_rows, "No notices.")}

<h2 id="methodology">Methodology and thresholds in force</h2>
{_methodology(w)}
</main></body></html>
"""


def write_html(data: ReportData, path: str | Path) -> Path:
    return write_output(path, render_html(data))


def keepiton_csv_text(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    write_keepiton_csv(rows, buf)
    return buf.getvalue()


# --- one call for the CLI and the report flow ------------------------------------------------------


class ReportResult(BaseModel):
    path: str
    sha256: str
    incidents: int
    alerts: int
    charts: int
    audit_ok: bool
    audit_entry: int
    markdown: str
    table: list[dict[str, Any]]


def default_path(watch: Watch, since: datetime) -> Path:
    """`reports/<watch>-<from>.html`; the watch's name made one file name, so it stays in reports/."""
    return Path("reports") / f"{safe_file_name(watch.name)}-{since.astimezone(timezone.utc):%Y%m%dT%H%MZ}.html"


def build_report(
    watch: Watch,
    since: datetime,
    until: datetime,
    out: str | Path | None = None,
    max_charts: int = 24,
    url: str | None = None,
) -> ReportResult:
    """Collect, write the HTML, and record the file's SHA-256 in the audit log."""
    with store.session_scope(url) as s:
        data = collect(s, watch, since, until, max_charts=max_charts)
    path = Path(out or default_path(watch, since))
    try:
        write_html(data, path)
    except OutputError as exc:
        with store.session_scope(url) as s:
            audit.record_report_failure(
                s,
                watch=watch.name,
                path=path,
                what="html-report",
                error=str(exc),
                params={"from": since, "until": until, "max_charts": max_charts},
            )
        raise
    with store.session_scope(url) as s:
        entry = audit.record_report(
            s,
            watch=watch.name,
            path=path,
            what="html-report",
            params={"from": since, "until": until, "max_charts": max_charts},
        )
    return ReportResult(
        path=str(path),
        sha256=entry.payload["sha256"],
        incidents=len(data.incidents),
        alerts=len(data.alerts),
        charts=len(data.series),
        audit_ok=bool(data.audit.get("ok")),
        audit_entry=entry.seq,
        markdown=markdown_summary(data, str(path)),
        table=incident_table(data),
    )
