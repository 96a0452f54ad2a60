"""Ground-truth labels from IODA's curated outage list, and the Kenya 2023 Telegram block.

IODA's list (columns id, start_utc, end_utc, country (a name), scope_level Country|Region|AS,
cause ...) becomes Labels: Country -> nationwide_outage, Region -> regional_outage,
AS -> network_outage; causes map onto pollwatch's vocabulary. Rows whose end is unreadable or
before their start (typos in the source) are skipped.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from pollwatch.models import Cause, IncidentKind, stable_id
from pollwatch.simulate import Label

SCOPE_KIND = {"country": IncidentKind.nationwide_outage, "region": IncidentKind.regional_outage, "as": IncidentKind.network_outage}
CAUSES = {
    "government-ordered": Cause.government_directed, "exams": Cause.government_directed,
    "power-outage": Cause.power_outage, "cable-cut": Cause.cable_cut, "weather": Cause.weather_or_disaster,
    "natural-disaster": Cause.weather_or_disaster, "equipment-failure": Cause.technical, "technical": Cause.technical,
    "misconfiguration": Cause.technical, "fire": Cause.technical,
}


def map_cause(text: str) -> Cause:
    return CAUSES.get((text or "").strip().lower(), Cause.unknown)


def ioda_labels(path: str | Path, country: str | None = None, start: datetime | None = None, end: datetime | None = None) -> list[Label]:
    """Labels from IODA's curated list (pollwatch.adapters.ioda), optionally for one country (ISO alpha-2) starting in [start, end)."""
    from pollwatch.adapters.ioda import read_ioda_outages

    return [lb for lb in read_ioda_outages(path, country).labels if not (start and lb.start < start) and not (end and lb.start >= end)]


def kenya_telegram_label() -> Label:
    """Telegram blocked on Safaricom (AS33771, AS37061) during the national exams, 13-24 November 2023.

    There is no independent timestamped label: the span is the one OONI's report describes
    (day resolution), so it starts at 2023-11-13T00:00Z and ends at 2023-11-25T00:00Z.
    """
    start = datetime(2023, 11, 13, tzinfo=timezone.utc)
    end = datetime(2023, 11, 25, tzinfo=timezone.utc)
    return Label(id=stable_id("ke-2023-telegram", length=12), kind=IncidentKind.service_block, country="KE", asns=[33771, 37061],
                 services=["telegram"], start=start, end=end, cause=Cause.government_directed)
