"""Access Now #KeepItOn STOP rows -> evaluation labels (format `keepiton`).

The responders' vocabulary: one row per shutdown with `country` (a name), `start_date`,
`end_date` (days, no times), `geo_scope` (National | Regional | ...), `area`, `shutdown_extent`
(`full network`, `service-based`, `throttling`, `both`), `affected_network` (mobile/broadband)
and a yes/no column per service (`facebook`, `twitter`, `whatsapp`, `instagram`, `telegram`) plus
`other_services`. Labels: full network -> nationwide_outage (National) or regional_outage (with the
area as its region); service-based -> service_block with the services marked yes; throttling ->
throttling; `both` -> an outage and a service block. Days are whole UTC days: start_date 00:00 to
the day after end_date (day resolution: time to detect against these labels means little). Every
label's cause is government_directed: the dataset lists deliberate shutdowns. Rows later yearly
sheets re-list (same country, dates, area and extent) become one label. A row whose end_date is not a date
('ongoing', 'Unknown': 20 of the 2016-2022 sheet's rows) is skipped with its reason, as an unknown country is.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from pollwatch.adapters.common import Progress, csv_rows, need
from pollwatch.adapters.ioda import LabelFile
from pollwatch.jsonl import FormatError
from pollwatch.models import Cause, IncidentKind, stable_id
from pollwatch.simulate import Label
from pollwatch.words import country_code

SERVICES = ("facebook", "twitter", "whatsapp", "instagram", "telegram")


def _day(path: Path, line: int, row: dict[str, str], field: str) -> date:
    text = need(path, line, row, field)
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise FormatError(f"{path}:{line}: {field}: not a date (YYYY-MM-DD): {text[:30]!r}") from None


def _services(row: dict[str, str]) -> list[str]:
    """The services a row marks yes, then up to ten of its other services."""
    services = [s for s in SERVICES if (row.get(s) or "").strip().lower() == "yes"]
    return services + [s.strip().lower() for s in (row.get("other_services") or "").split(",") if s.strip()][:10]


def _kinds(extent: str, national: bool) -> list[IncidentKind]:
    """The incident kinds a shutdown extent means (none: an extent this reader does not know)."""
    kinds: list[IncidentKind] = []
    if extent in ("full network", "both"):
        kinds.append(IncidentKind.nationwide_outage if national else IncidentKind.regional_outage)
    if extent in ("service-based", "both"):
        kinds.append(IncidentKind.service_block)
    if extent == "throttling":
        kinds.append(IncidentKind.throttling)
    return kinds


def read_keepiton(path: str | Path, country: str | None = None, progress: Progress | None = None) -> LabelFile:
    path = Path(path)
    out = LabelFile()
    seen: set[tuple] = set()
    for line, row in csv_rows(path, progress, required=("country", "start_date", "shutdown_extent")):
        cc = country_code(need(path, line, row, "country"))
        if cc is None:
            out.skip(f"{path}:{line}: country {row['country'][:40]!r} unknown")
            continue
        if country and cc != country.upper():
            continue
        d0 = _day(path, line, row, "start_date")
        try:
            d1 = _day(path, line, row, "end_date") if (row.get("end_date") or "").strip() else d0
        except FormatError:
            # 'ongoing', 'Unknown', prose: a shutdown without a known end is no label to score against
            out.skip(f"{path}:{line}: end_date {row['end_date'][:30]!r} is not a date")
            continue
        if d1 < d0:
            out.skip(f"{path}:{line}: end_date before start_date")
            continue
        extent = (row.get("shutdown_extent") or "").strip().lower()
        area = (row.get("area") or "").strip()[:100]
        national = (row.get("geo_scope") or "").strip().lower() in ("national", "nationwide", "country")
        key = (cc, d0, d1, area, extent)
        if key in seen:
            continue
        seen.add(key)
        start = datetime.combine(d0, time(0), tzinfo=timezone.utc)
        end = datetime.combine(d1 + timedelta(days=1), time(0), tzinfo=timezone.utc)
        services = _services(row)
        kinds = _kinds(extent, national)
        if not kinds:
            out.skip(
                f"{path}:{line}: shutdown_extent {extent[:30]!r} is not one of full network, service-based, "
                "throttling, both"
            )
            continue
        for kind in kinds:
            out.labels.append(
                Label(
                    id=stable_id("keepiton", *key, kind.value, length=12),
                    kind=kind,
                    country=cc,
                    regions=[area] if kind is IncidentKind.regional_outage and area else [],
                    services=services if kind in (IncidentKind.service_block, IncidentKind.throttling) else [],
                    start=start,
                    end=end,
                    cause=Cause.government_directed,
                )
            )
    return out
