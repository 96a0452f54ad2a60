"""Routing from the playbook's `alerts:` section: which incidents reach responders, who gets
mentioned, and how many thread updates an incident may post per hour."""

from __future__ import annotations

from datetime import datetime, timedelta

from pollwatch.models import Incident, IncidentKind
from pollwatch.playbook import AlertRouting

_BROAD = {IncidentKind.nationwide_outage, IncidentKind.regional_outage}


def provider_level(inc: Incident) -> int | None:
    """The one ASN an incident is confined to (a per-provider incident), else None."""
    if inc.kind in _BROAD or len(inc.scope.asns) != 1:
        return None
    if inc.kind is IncidentKind.network_outage or not inc.scope.regions:
        return inc.scope.asns[0]
    return None


def alertable(routing: AlertRouting, inc: Incident) -> tuple[bool, str]:
    """Whether an incident may open a thread now; the reason when not (kept in the outbox as `skipped:`)."""
    if inc.severity < routing.min_severity:
        return False, f"severity {inc.severity:,.0f} below min_severity {routing.min_severity:,.0f}"
    asn = provider_level(inc)
    if asn is not None and not routing.per_provider and asn not in routing.per_provider_asns:
        return False, f"per-provider incident on AS{asn}; per_provider alerts are off for it"
    return True, ""


def critical(routing: AlertRouting, inc: Incident) -> bool:
    return inc.severity >= routing.critical_severity


def over_update_limit(routing: AlertRouting, posted_update_times: list[datetime], at: datetime) -> bool:
    """True when `max_updates_per_hour` thread updates were already posted in the hour before `at`."""
    hour_ago = at - timedelta(hours=1)
    recent = [t for t in posted_update_times if hour_ago < t <= at]
    return len(recent) >= routing.max_updates_per_hour
