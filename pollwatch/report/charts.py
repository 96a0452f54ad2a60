"""The report's SVG charts as geometry: where every bar, line and label goes. The templates draw them
(templates/charts.svg.j2), so every name and reason in a chart is escaped like the rest of the page.

- `timeline()`: incidents as bars over the report's range, with milestones and data gaps.
- `series_chart()`: one signal against the detector's expectation and critical threshold, with the
  incident windows and the series' own gaps shaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from pollwatch.words import KIND_TITLES, scope_line
from pollwatch.models import IncidentKind, iso
from pollwatch.report.data import Point, ReportData, Series

KIND_COLORS = {
    IncidentKind.nationwide_outage: "#c0392b",
    IncidentKind.regional_outage: "#e67e22",
    IncidentKind.network_outage: "#d35400",
    IncidentKind.service_block: "#8e44ad",
    IncidentKind.circumvention_block: "#2c3e50",
    IncidentKind.throttling: "#16a085",
}
WIDTH = 1040
# candidate spacings of the time axis's ticks: the first that gives at most ten
TICK_STEPS = (3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400)


class Axis:
    """Times of the report's range onto x coordinates between x0 and x1 (clamped)."""

    def __init__(self, since: datetime, until: datetime, x0: float, x1: float):
        self.t0, self.t1 = since.timestamp(), until.timestamp()
        self.x0, self.x1 = x0, x1

    def x(self, dt: datetime) -> float:
        f = (dt.timestamp() - self.t0) / max(self.t1 - self.t0, 1)
        return round(self.x0 + min(max(f, 0.0), 1.0) * (self.x1 - self.x0), 1)

    def width(self, start: datetime, end: datetime, least: float) -> float:
        return max(round(self.x(end) - self.x(start), 1), least)

    def ticks(self) -> list[tuple[float, str]]:
        span = self.t1 - self.t0
        step = next((s for s in TICK_STEPS if span / s <= 10), TICK_STEPS[-1])
        t = self.t0 - self.t0 % step + (step if self.t0 % step else 0)
        out = []
        while t <= self.t1:
            dt = datetime.fromtimestamp(t, tz=timezone.utc)
            out.append((self.x(dt), f"{dt:%m-%d %H:%M}" if step < 86400 else f"{dt:%Y-%m-%d}"))
            t += step
        return out


@dataclass
class Band:
    """A shaded span: an incident's window, a data gap."""

    x: float
    width: float
    color: str
    title: str
    opacity: float = 1.0


@dataclass
class Milestone:
    x: float
    name: str
    title: str


@dataclass
class TimelineRow:
    y: float
    label: str
    bars: list[Band]  # one per episode in the range for a recurring incident


@dataclass
class Timeline:
    height: float
    left: float
    top: float
    gap_row: float
    ticks: list[tuple[float, str]]
    milestones: list[Milestone]
    rows: list[TimelineRow]
    gaps: list[Band]
    width: float = WIDTH
    row: float = 22


@dataclass
class SeriesChart:
    label: str
    left: float
    right: float
    top: float
    bottom: float
    ticks: list[tuple[float, str]]
    milestones: list[Milestone]
    incidents: list[Band]
    gaps: list[Band]
    grid: list[tuple[float, str]]  # y and the value it marks
    threshold: str  # SVG path data ("" when there is nothing to draw)
    expected: str
    line: str
    width: float = WIDTH
    height: float = 170


def _milestones(axis: Axis, data: ReportData) -> list[Milestone]:
    return [
        Milestone(axis.x(at), name, f"{name} {iso(at)}")
        for name, at in data.watch.milestone_times().items()
        if data.since <= at < data.until
    ]


def timeline(data: ReportData) -> Timeline:
    """Incidents as bars on the report's time range, with milestones and data gaps."""
    left, right, top, row = 170, 1010, 18, 22
    gap_row = top + max(len(data.incidents), 1) * row + 6
    axis = Axis(data.since, data.until, left, right)
    rows = []
    for k, inc in enumerate(data.incidents):
        bars = []
        for n, (start, end) in enumerate(inc.spans(), 1):  # a recurring incident: a bar per episode in the range
            if not (start < data.until and (end is None or end >= data.since)):
                continue
            episode = f" (episode {n} of {len(inc.spans())})" if inc.episodes else ""
            title = f"{KIND_TITLES[inc.kind]}{episode} {iso(start)} → {iso(end) or 'ongoing'}: {scope_line(inc)}"
            bars.append(Band(axis.x(start), axis.width(start, end or data.until, 3), KIND_COLORS[inc.kind], title))
        rows.append(TimelineRow(top + k * row, inc.kind.value, bars))
    gaps = [
        Band(axis.x(g.start), axis.width(g.start, g.end, 1), "#bbb", f"{g.source} {g.entity}: {g.reason}")
        for g in data.gaps
    ]
    return Timeline(gap_row + 36, left, top, gap_row, axis.ticks(), _milestones(axis, data), rows, gaps)


def fmt_value(v: float | None) -> str:
    """A value short enough for an axis label or a table cell."""
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


def _path(axis: Axis, pts: list[Point], y: Callable[[float], float]) -> str:
    d, pen = [], False
    for t, v in pts:
        if v is None:
            pen = False
            continue
        d.append(f"{'L' if pen else 'M'}{axis.x(t)},{y(v)}")
        pen = True
    return " ".join(d)


def series_chart(data: ReportData, s: Series) -> SeriesChart:
    """One signal against the detector's expectation and critical threshold, incident windows and gaps shaded."""
    left, right, top, bottom = 60, 1010, 10, 140
    axis = Axis(data.since, data.until, left, right)
    vals = [v for _, v in s.points if v is not None] + [v for _, v in s.expected if v is not None]
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    lo = min(lo, 0.0)
    if hi - lo < 1e-9:
        hi = lo + 1.0
    hi += (hi - lo) * 0.05

    def y(v: float) -> float:
        return round(bottom - (min(max(v, lo), hi) - lo) / (hi - lo) * (bottom - top), 1)

    incidents = [
        Band(
            axis.x(start),
            axis.width(start, end or data.until, 2),
            KIND_COLORS[inc.kind],
            f"incident {inc.id} ({inc.kind.value})",
            0.22 if inc.id in s.incident_ids else 0.07,
        )
        for inc in data.incidents
        for start, end in inc.spans()
        if start < data.until and (end is None or end >= data.since)
    ]
    gaps = [
        Band(axis.x(g.start), axis.width(g.start, g.end, 1), "#999", f"no data: {g.reason}")
        for g in data.gaps
        if g.entity == s.entity and g.source == s.source and g.signal in (None, s.signal)
    ]
    grid = [(y(v), fmt_value(v)) for v in (lo, (lo + hi) / 2, hi)]
    return SeriesChart(
        label=f"{s.signal} {s.entity}",
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        ticks=axis.ticks(),
        milestones=_milestones(axis, data),
        incidents=incidents,
        gaps=gaps,
        grid=grid,
        threshold=_path(axis, s.threshold, y),
        expected=_path(axis, s.expected, y),
        line=_path(axis, s.points, y),
    )
