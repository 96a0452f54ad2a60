"""The #KeepItOn export: incidents in the vocabulary of Access Now's STOP dataset (shutdown_type,
shutdown_extent, affected_network, per-service flags, geo_scope), for sharing with the digital-rights
community; every cell goes through `csv_cell`, so no name can become a spreadsheet formula."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TextIO

from pollwatch.models import Incident, IncidentKind, iso
from pollwatch.words import country_name
from pollwatch.playbook import Watch
from pollwatch.sinks import csv_cell, output_file

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
                "country": country_name(inc.country),
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


def keepiton_csv_text(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    write_keepiton_csv(rows, buf)
    return buf.getvalue()
