"""The vocabulary of IODA's curated outage list: its scope levels and causes in pollwatch's terms (the list
itself is read by pollwatch.adapters.ioda: `read_ioda_outages`, `ioda_labels`).

IODA's list (columns id, start_utc, end_utc, country (a name), scope_level Country|Region|AS,
cause ...) becomes Labels: Country -> nationwide_outage, Region -> regional_outage,
AS -> network_outage; causes map onto pollwatch's vocabulary. Rows whose end is unreadable or
before their start (typos in the source) are skipped.
"""

from __future__ import annotations

from pollwatch.models import Cause, IncidentKind

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
