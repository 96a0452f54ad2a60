"""A watch whose heightened phase starts about now, lasts minutes and ticks every few seconds.

Used by the scheduling tests and the distributed test: its phase offsets are computed from the
current time in the election's time zone, and `outage_observations()` writes a JSON Lines file
with history for warm-up and a nationwide outage injected a few ticks into the phase.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from pollwatch.jsonl import write_observations
from pollwatch.models import IncidentKind
from pollwatch.playbook import Watch, load_watch
from pollwatch.simulate import EventSpec, simulate
from pollwatch.timeutil import floor_time, format_duration

TZ = "Asia/Almaty"


def heightened_phase(start: datetime, length: timedelta, cadence: timedelta, tz: str) -> tuple[str, dict]:
    """(election day, phase): a `heightened` phase over [start, start + length) at `cadence`, as offsets from the
    election day's midnight in `tz`."""
    zone = ZoneInfo(tz)
    day = start.astimezone(zone).date()
    offset = start - datetime(day.year, day.month, day.day, tzinfo=zone)
    phase = {
        "name": "heightened",
        "start": format_duration(offset),
        "end": format_duration(offset + length),
        "cadence": format_duration(cadence),
    }
    return day.isoformat(), phase


def write_fast_watch(
    directory: Path, start: datetime, length: timedelta, cadence: timedelta, name: str = "zz-fast-watch"
) -> Path:
    """Write a watch whose only phase `heightened` covers [start, start + length) at `cadence`."""
    day, phase = heightened_phase(start, length, cadence, TZ)
    doc = {
        "name": name,
        "country": "KZ",
        "election_date": day,
        "timezone": TZ,
        "phases": [phase],
        "signals": {
            "bgp": {
                "source": "ioda",
                "step": format_duration(cadence),
                "window": "10m",
                "warm_up": "2m",
                "warning": 0.9,
                "critical": 0.5,
                "recovery": format_duration(cadence * 2),
            }
        },
        "providers": [
            {"asn": 9198, "name": "Kazakhtelecom", "type": "fixed"},
            {"asn": 29355, "name": "Kcell", "type": "mobile"},
            {"asn": 21299, "name": "Beeline", "type": "mobile"},
        ],
        "regions": [{"code": "KZ-ALA", "name": "Almaty"}, {"code": "KZ-AST", "name": "Astana"}],
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def phase_start(now: datetime, cadence: timedelta, lead: timedelta) -> datetime:
    """A tick-aligned time at least `lead` after now."""
    return floor_time(now + lead, cadence) + cadence


def outage_observations(
    watch: Watch,
    path: Path,
    outage_start: datetime,
    outage: timedelta,
    history: timedelta = timedelta(minutes=12),
    after: timedelta = timedelta(minutes=5),
    seed: int = 3,
) -> Path:
    """History before the phase, and a nationwide outage from `outage_start`, as JSON Lines."""
    start = watch.resolved_phases()[0].start
    ev = EventSpec(kind=IncidentKind.nationwide_outage, start=outage_start, end=outage_start + outage, depth=0.95)
    sc = simulate(watch, start - history, start + after, [ev], seed=seed, missing_rate=0.0)
    write_observations(sc.observations, path)
    return path


def fast_watch(
    directory: Path,
    cadence: timedelta = timedelta(seconds=10),
    length: timedelta = timedelta(minutes=3),
    lead: timedelta = timedelta(seconds=20),
    now: datetime | None = None,
) -> tuple[Watch, Path]:
    now = now or datetime.now(timezone.utc)
    path = write_fast_watch(directory, phase_start(now, cadence, lead), length, cadence)
    return load_watch(path), path
