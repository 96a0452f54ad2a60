"""The report as one HTML document from the Jinja2 templates in templates/ (package data, loaded with
`jinja2.PackageLoader`, so an installed pollwatch finds them): autoescaping on, so every name, reason and
message from outside is escaped where it lands; no scripts, no external resources, and a Content Security
Policy that forbids loading anything, so the file opens offline and stays inert."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from pollwatch.words import KIND_TITLES, scope_line
from pollwatch.models import iso
from pollwatch.playbook import Watch
from pollwatch.report.charts import KIND_COLORS, fmt_value, series_chart, timeline
from pollwatch.report.data import ReportData
from pollwatch.sinks import terminal_safe, write_output
from pollwatch.timeutil import format_duration, parse_time_or_none


def when(dt: datetime | None, watch: Watch) -> Markup:
    """`2019-06-09 05:00 UTC (11:00 local)`, or `ongoing`."""
    if dt is None:
        return Markup("ongoing")
    dt = dt.astimezone(timezone.utc)
    return Markup('{} UTC <span class="muted">({} local)</span>').format(
        f"{dt:%Y-%m-%d %H:%M}", f"{dt.astimezone(watch.tz):%H:%M}"
    )


def _inert(value: object) -> object:
    """What `{{ }}` prints: outside text also without control and bidi characters (autoescaping leaves them: a
    name or a responder's reason with U+202E would show reversed); markup the report built itself as it is."""
    return terminal_safe(value) if isinstance(value, str) and not isinstance(value, Markup) else value


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("pollwatch.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_inert,
    )
    env.filters.update(num=fmt_value, duration=format_duration, iso=iso)
    env.globals.update(
        KIND_TITLES=KIND_TITLES,
        KIND_COLORS=KIND_COLORS,
        scope_line=scope_line,
        series_chart=series_chart,
        enumerate=enumerate,
    )
    return env


def render_html(data: ReportData) -> str:
    """The whole report as one HTML document (no scripts, no external resources)."""
    counts = Counter(i.kind for i in data.incidents)
    kinds = ", ".join(f"{n} {KIND_TITLES[k].lower()}" for k, n in counts.items()) or "none"
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            data=data,
            w=data.watch,
            chain=data.audit,
            kinds=kinds,
            timeline=timeline(data),
            cards=[
                {
                    "inc": inc,
                    "anomalies": [data.anomalies[a] for a in inc.anomaly_ids if a in data.anomalies],
                    "alerts": [a for a in data.alerts if a.alert.incident_id == inc.id],
                }
                for inc in data.incidents
            ],
            when=lambda dt: when(dt, data.watch),
            when_iso=lambda text: when(parse_time_or_none(text) if isinstance(text, str) else text, data.watch),
            title=f"pollwatch report — {data.watch.name}",
        )
    )


def write_html(data: ReportData, path: str | Path) -> Path:
    return write_output(path, render_html(data))
