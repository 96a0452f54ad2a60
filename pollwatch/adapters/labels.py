"""Ground-truth labels from IODA's curated outage list (the cause vocabulary, and time-range filtering).

IODA's list (columns id, start_utc, end_utc, country (a name), scope_level Country|Region|AS,
cause ...) becomes Labels: Country -> nationwide_outage, Region -> regional_outage,
AS -> network_outage; causes map onto pollwatch's vocabulary. Rows whose end is unreadable or
before their start (typos in the source) are skipped.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pollwatch.models import Cause, IncidentKind
from pollwatch.simulate import Label

SCOPE_KIND = {
    "country": IncidentKind.nationwide_outage,
    "region": IncidentKind.regional_outage,
    "as": IncidentKind.network_outage,
}
CAUSES = {
    "government-ordered": Cause.government_directed,
    "exams": Cause.government_directed,
    "power-outage": Cause.power_outage,
    "cable-cut": Cause.cable_cut,
    "weather": Cause.weather_or_disaster,
    "natural-disaster": Cause.weather_or_disaster,
    "equipment-failure": Cause.technical,
    "technical": Cause.technical,
    "misconfiguration": Cause.technical,
    "fire": Cause.technical,
}


def map_cause(text: str) -> Cause:
    return CAUSES.get((text or "").strip().lower(), Cause.unknown)


def ioda_labels(
    path: str | Path, country: str | None = None, start: datetime | None = None, end: datetime | None = None
) -> list[Label]:
    """Labels from IODA's curated list (pollwatch.adapters.ioda), optionally for one country
    (ISO alpha-2) starting in [start, end).
    """
    from pollwatch.adapters.ioda import read_ioda_outages

    return [
        lb
        for lb in read_ioda_outages(path, country).labels
        if not (start and lb.start < start) and not (end and lb.start >= end)
    ]
