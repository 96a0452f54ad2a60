"""What attribution knows beyond the incident (external events: the coordinator's, the observatories' records)
and the primitives shared with calibration (onset alignment, recurrence, schedules)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from pollwatch.models import Cause, Incident
from pollwatch.playbook import Watch
from pollwatch.sources.ioda_api import DATASOURCE_SIGNALS

POLITICAL_EVENTS = {"protest", "announcement", "political"}
EVENT_CAUSE = {
    "power_outage": Cause.power_outage,
    "weather": Cause.weather_or_disaster,
    "disaster": Cause.weather_or_disaster,
}
CENSORSHIP_OUTAGES = {"dns_nxdomain", "dns_bogon", "dns_error", "tcp_reset", "tls_failure", "http_blockpage"}
RADAR_CAUSES = {
    "GOVERNMENT_DIRECTED": Cause.government_directed,
    "POWER_OUTAGE": Cause.power_outage,
    "CABLE_CUT": Cause.cable_cut,
    "WEATHER": Cause.weather_or_disaster,
    "NATURAL_DISASTER": Cause.weather_or_disaster,
    "TECHNICAL_PROBLEMS": Cause.technical,
    "TECHNICAL_PROBLEM": Cause.technical,
    "MAINTENANCE": Cause.technical,
}

MILESTONE_WINDOW = timedelta(hours=2)
RECURRENCE_TOLERANCE = timedelta(minutes=30)
TOGETHER_WINDOW = timedelta(minutes=15)
SAME_TIME_WINDOW = timedelta(minutes=30)
RECURRENCE_DAYS = 7


class ExternalEvent(BaseModel):
    """An event outside the watch's own measurements: recorded by the coordinator or a source."""

    name: str
    # protest | announcement | political | power_outage | weather | disaster | cable_cut | neighbour_outage |
    # radar_outage
    type: str
    start: datetime
    end: datetime | None = None
    regions: list[str] = Field(default_factory=list)
    country: str | None = None
    cause: str | None = None
    source: str = "coordinator"
    signal: str | None = None  # the pollwatch signal an observatory's record is about (IODA: its datasource)
    entity: str | None = None  # the pollwatch entity key of the record (country, region or network)


class AttributionContext(BaseModel):
    """What attribution knows beyond the incident: earlier incidents, other countries, recorded events."""

    past: list[Incident] = Field(default_factory=list)  # earlier incidents of this watch / country
    others: list[Incident] = Field(default_factory=list)  # incidents in other countries (neighbours)
    events: list[ExternalEvent] = Field(default_factory=list)  # from sources (e.g. Cloudflare Radar)
    # signals the watch had data for (any non-null observation) when attributing; None: not known, the playbook's
    # signals are taken as observed. A signal without data is no evidence: its silence says nothing.
    observed_signals: set[str] | None = None


def events_from_corroborations(records: Iterable[Any]) -> list[ExternalEvent]:
    """The observatories' own outage records (pollwatch.sources' Corroboration records) as events: Cloudflare
    Radar annotations carrying Radar's cause label, IODA's outage events and its warning or critical alerts
    (`ioda_outage`, with the signal and entity they are about; an alert back to `normal` is a recovery)."""
    out = []
    for r in records:
        kind = getattr(r, "kind", None)
        if kind == "radar_annotation" and getattr(r, "cause", None):
            out.append(
                ExternalEvent(
                    name=getattr(r, "description", None) or r.id,
                    type="radar_outage",
                    start=r.start,
                    end=r.end,
                    country=r.country,
                    cause=r.cause,
                    source="radar",
                )
            )
        elif kind == "ioda_event" or (
            kind == "ioda_alert" and str(getattr(r, "level", "") or "").lower() in ("warning", "critical")
        ):
            ds = getattr(r, "datasource", None) or ""
            out.append(
                ExternalEvent(
                    name=f"IODA {kind.removeprefix('ioda_')} {ds} {r.entity}",
                    type="ioda_outage",
                    start=r.start,
                    end=r.end,
                    country=r.country,
                    source="ioda",
                    signal=DATASOURCE_SIGNALS.get(ds, ds or None),
                    entity=r.entity,
                )
            )
    return out


def in_scope(entity: str | None, incident: Incident) -> bool:
    """Whether an entity key is the incident's country or one of its regions or networks."""
    if not entity or entity == incident.country:
        return True
    part = entity.partition("/")[2]
    kind, _, code = part.partition("=")
    return (kind == "region" and code in incident.scope.regions) or (
        kind == "asn" and code.isdigit() and int(code) in incident.scope.asns
    )


def watch_events(watch: Watch) -> list[ExternalEvent]:
    """The coordinator's events from the playbook, with UTC times."""
    out = []
    for e in watch.events:
        start = watch.local_time(e.at)
        end = watch.local_time(e.end) if e.end else start + MILESTONE_WINDOW
        out.append(
            ExternalEvent(
                name=e.name,
                type=e.type,
                start=start,
                end=end,
                regions=e.regions,
                country=e.country,
                cause=e.cause,
                source=e.source,
            )
        )
    return out


# --- primitives shared with calibration ------------------------------------------------------


def onset_alignment(local: datetime, resolution: timedelta = timedelta(minutes=1)) -> tuple[str | None, float]:
    """('hour' | 'half_hour' | None, minutes past the hour) of a local onset time.

    With data binned every `resolution`, an onset is on the hour when its bin starts on the hour.
    """
    minutes = local.minute + local.second / 60
    res = max(resolution.total_seconds() / 60, 1.0)
    if minutes < res:
        return "hour", minutes
    if 30 <= minutes < 30 + res:
        return "half_hour", minutes
    return None, minutes


def recurrence_days(
    start: datetime, earlier: Iterable[datetime], tolerance: timedelta = RECURRENCE_TOLERANCE
) -> float | None:
    """Hours between `start` and an earlier onset exactly one day before it (within tolerance), else None."""
    best = None
    for t in earlier:
        delta = start - t
        off = abs(delta - timedelta(days=1))
        if off <= tolerance and (best is None or off < best[0]):
            best = (off, delta)
    return None if best is None else best[1].total_seconds() / 3600


def same_time_days(
    start: datetime,
    earlier: Iterable[datetime],
    tz: Any,
    tolerance: timedelta = RECURRENCE_TOLERANCE,
    days: int = RECURRENCE_DAYS,
) -> int | None:
    """Days back (2..`days`) to an earlier onset at the same local time of day (within tolerance), else None."""
    local = start.astimezone(tz)
    best = None
    for t in earlier:
        lt = t.astimezone(tz)
        back = (local.date() - lt.date()).days
        if not 2 <= back <= days:
            continue
        off = abs((local.hour * 60 + local.minute) - (lt.hour * 60 + lt.minute))
        off = min(off, 1440 - off)
        if off <= tolerance.total_seconds() / 60 and (best is None or back < best):
            best = back
    return best


def schedule_episodes(
    start: datetime,
    earlier: Iterable[datetime],
    tz: Any,
    tolerance: timedelta = RECURRENCE_TOLERANCE,
    days: int = RECURRENCE_DAYS,
) -> int:
    """How many earlier onsets form a chain with `start` at the same local time of day (within `tolerance`),
    each 1..`days` local days before the next: 2 or more is a schedule."""

    def minute(t: datetime) -> int:
        lt = t.astimezone(tz)
        return lt.hour * 60 + lt.minute

    m0 = minute(start)
    same = sorted(
        (
            t
            for t in earlier
            if t < start and min(abs(minute(t) - m0), 1440 - abs(minute(t) - m0)) <= tolerance.total_seconds() / 60
        ),
        reverse=True,
    )
    chain, last = 0, start.astimezone(tz).date()
    for t in same:
        day = t.astimezone(tz).date()
        gap = (last - day).days
        if gap == 0:
            continue
        if gap > days:
            break
        chain, last = chain + 1, day
    return chain


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)
