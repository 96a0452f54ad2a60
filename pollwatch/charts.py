"""Charts for responders: the affected signals against their baseline, incident window shaded.

Drawn with matplotlib's Agg canvas directly (no pyplot, no display, safe in worker threads).
One panel per signal; each affected entity is a line. Drop signals (BGP, active probing,
telescope) are shown as a percentage of their expected value so that networks of very different
sizes share an axis; rise signals (failure rates, latency) are shown in their own unit with the
expected value dashed.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median

from pollwatch.models import Anomaly, Direction, Incident, Observation
from pollwatch.playbook import Watch
from pollwatch.words import KIND_TITLES, country_name

MAX_PANELS = 4
MAX_LINES = 5


@dataclass
class Series:
    label: str
    times: list[datetime]
    values: list[float | None]
    expected: float | None = None


@dataclass
class Panel:
    title: str
    ylabel: str
    series: list[Series] = field(default_factory=list)
    normalised: bool = False  # values are % of expected (baseline line at 100)


def render_chart(
    title: str, panels: list[Panel], window: tuple[datetime, datetime | None], tz_name: str = "UTC"
) -> bytes:
    """A PNG with one panel per signal and the incident window shaded."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    panels = panels[:MAX_PANELS] or [Panel(title="no data", ylabel="")]
    fig = Figure(figsize=(9, 2.3 * len(panels) + 0.8), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    start, end = window
    for ax, panel in zip(axes, panels):
        last_time = None
        for s in panel.series[:MAX_LINES]:
            xs = [t for t, v in zip(s.times, s.values)]
            ys = [float("nan") if v is None else v for v in s.values]
            (line,) = ax.plot(xs, ys, linewidth=1.4, label=s.label)
            if s.expected is not None and not panel.normalised:
                ax.axhline(s.expected, color=line.get_color(), linestyle="--", linewidth=0.9)
            if xs:
                last_time = max(xs) if last_time is None else max(last_time, max(xs))
        if panel.normalised:
            ax.axhline(100.0, color="grey", linestyle="--", linewidth=0.9, label="baseline")
        shade_end = end or last_time or start
        ax.axvspan(start, shade_end, color="tab:red", alpha=0.15, label="incident")
        ax.set_title(panel.title, fontsize=9, loc="left")
        ax.set_ylabel(panel.ylabel, fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if panel.series:
            ax.legend(fontsize=7, loc="lower left", ncol=3)
    locator = AutoDateLocator()
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes[-1].set_xlabel("time (UTC)", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def incident_panels(
    watch: Watch, inc: Incident, anomalies: list[Anomaly], observations: list[Observation]
) -> list[Panel]:
    """Panels for an incident: per signal its most affected entities (by severity), with expectations.

    The expectation of a line is its anomaly's `expected`; without one, the median of the line's
    values before the incident started.
    """
    by_series: dict[tuple[str, str, str], list[Observation]] = defaultdict(list)
    for o in observations:
        by_series[(o.source, o.signal, o.entity_key)].append(o)
    chosen = _lines(watch, inc, anomalies, by_series)
    panels = []
    for sig, anoms in sorted(chosen.items(), key=lambda kv: -max(a.severity for a in kv[1])):
        drop = anoms[0].direction is Direction.drop
        panel = Panel(
            title=f"{sig} — {'% of expected' if drop else 'observed vs expected (dashed)'}",
            ylabel="% of expected" if drop else sig,
            normalised=drop,
        )
        for a in anoms:
            series = _series(watch, inc, a, by_series.get((a.source, a.signal, a.entity.key), []), drop)
            if series is not None:
                panel.series.append(series)
        if panel.series:
            panels.append(panel)
    return panels[:MAX_PANELS]


def _lines(
    watch: Watch, inc: Incident, anomalies: list[Anomaly], by_series: dict[tuple[str, str, str], list[Observation]]
) -> dict[str, list[Anomaly]]:
    """Per signal, the anomalies to draw (its most severe entities); with none at hand, the country-level series of
    the incident's signals."""
    chosen: dict[str, list[Anomaly]] = defaultdict(list)
    for a in sorted(anomalies, key=lambda a: -a.severity):
        if len(chosen[a.signal]) < MAX_LINES and all(x.entity.key != a.entity.key for x in chosen[a.signal]):
            chosen[a.signal].append(a)
    if chosen:
        return chosen
    for sig in inc.scope.signals:
        for (src, s, ent), obs in by_series.items():
            if s == sig and ent == inc.country:
                chosen[sig].append(
                    Anomaly(
                        id="-",
                        watch=watch.name,
                        source=src,
                        signal=s,
                        family=inc.family,
                        entity=obs[0].entity,
                        direction=Direction.drop,
                        start=inc.start,
                        detected_at=inc.detected_at,
                    )
                )
    return chosen


def _series(watch: Watch, inc: Incident, a: Anomaly, observations: list[Observation], drop: bool) -> Series | None:
    """One anomaly's line against its expectation (as % of it for a drop), or None when there is nothing to draw."""
    obs = sorted(observations, key=lambda o: o.time)
    if not obs:
        return None
    expected = a.expected
    if expected is None:
        before = [o.value for o in obs if o.time < inc.start and o.value is not None]
        expected = median(before) if before else None
    values: list[float | None] = [o.value for o in obs]
    if drop:
        if not expected:
            return None
        values = [None if v is None else 100.0 * v / expected for v in values]
    return Series(label=_label(watch, a), times=[o.time for o in obs], values=values, expected=expected)


def _label(watch: Watch, a: Anomaly) -> str:
    e = a.entity
    if e.service:
        base = f"{e.service}"
        return f"{base} on {watch.provider_name(e.asn)}" if e.asn else base
    if e.asn:
        return f"{watch.provider_name(e.asn)} (AS{e.asn})"
    if e.region:
        return e.region
    return e.country


def incident_chart_window(inc: Incident) -> tuple[datetime, datetime]:
    """The span an incident's chart shows: context before it, and after it only up to the tick that last updated it
    (a chart posted with a tick's alert shows what that tick knew, whatever the store holds by the time it is drawn)."""
    end = inc.end or inc.updated_at
    span = max(end - inc.start, timedelta(hours=1))
    return inc.start - max(span * 2, timedelta(hours=6)), min(
        end + max(span / 2, timedelta(hours=1)), inc.updated_at + timedelta(seconds=1)
    )


def incident_chart(
    watch: Watch, inc: Incident, anomalies: list[Anomaly], observations: list[Observation]
) -> bytes | None:
    """The PNG for an incident's thread, or None when there is nothing to draw."""
    panels = incident_panels(watch, inc, anomalies, observations)
    if not panels:
        return None
    state = "resolved" if inc.end else "ongoing"
    title = f"{KIND_TITLES[inc.kind]} in {country_name(inc.country)} ({state}) — incident {inc.id}"
    return render_chart(title, panels, (inc.start, inc.end), watch.timezone)
