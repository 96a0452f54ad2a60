"""Attribution: a likely cause for each incident, with the evidence and numbers behind it.

This first version gathers the evidence responders look at first (onset on the local hour or
half hour, providers dropping together, signals agreeing, closeness to an election milestone)
and reports it, but names no cause (`unknown`, confidence 0) until the scorer is calibrated.
A responder's override, when present, always wins and is carried into later alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pollwatch.models import Anomaly, Cause, Evidence, Incident, IncidentEvent
from pollwatch.playbook import Watch


def gather_evidence(watch: Watch, incident: Incident, anomalies: Sequence[Anomaly] = ()) -> list[Evidence]:
    """Named pieces of evidence about an incident, each with its numbers."""
    out: list[Evidence] = []
    local = incident.start.astimezone(watch.tz)
    minute = local.minute
    on_hour = minute == 0
    on_half = minute in (0, 30)
    out.append(Evidence(
        name="onset_on_the_hour", supports=Cause.government_directed if on_half else Cause.unknown, weight=0.0,
        detail=f"onset at {local:%H:%M} local ({'on the hour' if on_hour else 'on the half hour' if on_half else 'not on the hour or half hour'})",
        numbers={"local_minute": minute},
    ))
    if incident.scope.asns:
        starts = sorted(a.start for a in anomalies if a.entity.asn is not None) if anomalies else []
        spread = (starts[-1] - starts[0]).total_seconds() / 60 if len(starts) > 1 else 0.0
        out.append(Evidence(
            name="providers_together", supports=Cause.unknown, weight=0.0,
            detail=f"{len(incident.scope.asns)} provider(s) affected ({', '.join(incident.scope.providers[:5])})"
                   + (f", onsets within {spread:.0f} min" if len(starts) > 1 else ""),
            numbers={"providers": len(incident.scope.asns), "onset_spread_min": spread, "share": incident.scope.share},
        ))
    if incident.scope.signals:
        out.append(Evidence(
            name="signals_agree", supports=Cause.unknown, weight=0.0,
            detail=f"signals affected: {', '.join(incident.scope.signals)}",
            numbers={"signals": len(incident.scope.signals)},
        ))
    nearest = None
    for name, when in watch.milestone_times().items():
        delta = abs(incident.start - when)
        if nearest is None or delta < nearest[1]:
            nearest = (name, delta, when)
    if nearest and nearest[1] <= timedelta(hours=2):
        out.append(Evidence(
            name="election_milestone", supports=Cause.government_directed, weight=0.0,
            detail=f"onset {nearest[1].total_seconds() / 60:.0f} min from {nearest[0]} ({nearest[2]:%Y-%m-%d %H:%M} local)",
            numbers={"milestone": nearest[0], "minutes": round(nearest[1].total_seconds() / 60, 1)},
        ))
    return out


def attribute_incident(watch: Watch, incident: Incident, anomalies: Sequence[Anomaly] = ()) -> Incident:
    """Return the incident with cause, confidence and evidence filled in."""
    inc = incident.model_copy(deep=True)
    inc.evidence = gather_evidence(watch, inc, anomalies)
    if inc.override:
        inc.cause = Cause(inc.override["cause"])
        inc.cause_confidence = 1.0
    else:
        inc.cause, inc.cause_confidence = Cause.unknown, 0.0
    return inc


def attribute(watch: Watch, events: Sequence[IncidentEvent], known: dict[str, Incident] | None = None,
              anomalies: Sequence[Anomaly] = ()) -> list[IncidentEvent]:
    """Attribute every incident event; an attribution change is noted as a reason on the event.

    `known` holds the incidents as last recorded (with any responder override), by id.
    """
    known = dict(known or {})
    by_id: dict[str, list[Anomaly]] = {}
    for a in anomalies:
        by_id.setdefault(a.id, []).append(a)
    out = []
    for ev in events:
        inc = ev.incident
        prior = known.get(inc.id)
        if prior is not None and prior.override and not inc.override:
            inc = inc.model_copy(update={"override": prior.override})
        members = [x for aid in inc.anomaly_ids for x in by_id.get(aid, [])]
        inc = attribute_incident(watch, inc, members)
        reasons = list(ev.reasons)
        if prior is not None and prior.cause != inc.cause:
            reasons.append(f"attribution changed from {prior.cause.value} to {inc.cause.value} ({inc.cause_confidence:.0%})")
        known[inc.id] = inc
        out.append(ev.model_copy(update={"incident": inc, "reasons": reasons}))
    return out


def apply_override(incident: Incident, cause: Cause, who: str, why: str, at: datetime) -> Incident:
    """A responder confirms or overrides the attribution; kept with who and why."""
    inc = incident.model_copy(deep=True)
    inc.override = {"cause": cause.value, "by": who, "why": why, "at": at.isoformat()}
    inc.cause, inc.cause_confidence = cause, 1.0
    inc.version += 1
    return inc
