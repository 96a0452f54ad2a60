"""Classification: anomalies grouped into incidents, and each incident's kind and scope.

Like detection this is a fold over ticks with explicit state. Anomalies of one family
(connectivity, service, circumvention, performance) in one country that overlap in time join one
incident; the incident's kind follows its current scope and may change over its life
(network -> regional -> nationwide), each change recorded in `kind_history`. An incident
resolves when all its anomalies have stayed closed for the playbook's recovery time.

Connectivity scope counts *critical* anomalies: a regional outage also dents the country total
and every provider serving the region, but only the region falls past the critical threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from pollwatch.models import Anomaly, AnomalyEvent, Family, Incident, IncidentEvent, IncidentKind, Scope, iso, stable_id
from pollwatch.playbook import Watch

FAMILY_KIND = {
    Family.service: IncidentKind.service_block,
    Family.circumvention: IncidentKind.circumvention_block,
    Family.performance: IncidentKind.throttling,
}


class GroupState(BaseModel):
    incidents: dict[str, Incident] = Field(default_factory=dict)  # open incidents by id
    anomalies: dict[str, Anomaly] = Field(default_factory=dict)  # anomalies of open incidents
    membership: dict[str, str] = Field(default_factory=dict)  # anomaly id -> incident id


class ClassifyResult(BaseModel):
    state: GroupState
    events: list[IncidentEvent] = Field(default_factory=list)


def connectivity_scope(watch: Watch, anomalies: list[Anomaly]) -> tuple[IncidentKind, Scope]:
    """Kind and scope of a connectivity incident from its (open) anomalies."""
    crit = [a for a in anomalies if a.level == "critical"]
    basis = crit or anomalies
    asns = sorted({a.entity.asn for a in basis if a.entity.asn is not None})
    regions = sorted({a.entity.region for a in basis if a.entity.region is not None})
    country_hit = any(a.entity.level == "country" for a in basis)
    n_prov = max(len(watch.providers), 1)
    n_reg = max(len(watch.regions), 1)
    share = max(len(asns) / n_prov if watch.providers else 0.0, len(regions) / n_reg if watch.regions else 0.0)
    if crit:
        if any(a.entity.level == "country" for a in crit) or share >= watch.classification.nationwide_share:
            kind = IncidentKind.nationwide_outage
            share = max(share, 1.0 if any(a.entity.level == "country" for a in crit) else share)
        elif regions:
            kind = IncidentKind.regional_outage
        else:
            kind = IncidentKind.network_outage
    else:  # warnings only: the most specific level that is affected
        if asns:
            kind = IncidentKind.network_outage
        elif regions:
            kind = IncidentKind.regional_outage
        else:
            kind = IncidentKind.nationwide_outage if country_hit else IncidentKind.network_outage
    scope = Scope(regions=regions, asns=asns, share=round(min(share, 1.0), 4))
    return kind, scope


def _scope(watch: Watch, family: Family, anomalies: list[Anomaly]) -> tuple[IncidentKind, Scope]:
    if family is Family.connectivity:
        kind, scope = connectivity_scope(watch, anomalies)
    else:
        kind = FAMILY_KIND[family]
        asns = sorted({a.entity.asn for a in anomalies if a.entity.asn is not None})
        scope = Scope(
            asns=asns,
            regions=sorted({a.entity.region for a in anomalies if a.entity.region is not None}),
            services=sorted({a.entity.service for a in anomalies if a.entity.service is not None}),
            share=round(len(asns) / max(len(watch.providers), 1), 4) if watch.providers else 0.0,
        )
    scope.providers = [watch.provider_name(a) for a in scope.asns]
    scope.signals = sorted({a.signal for a in anomalies})
    scope.network_types = sorted({p.type for p in watch.providers if p.asn in scope.asns})
    return kind, scope


def _refresh(watch: Watch, inc: Incident, members: list[Anomaly]) -> list[str]:
    """Recompute an incident from its anomalies; return the reasons it changed (empty if none)."""
    open_members = [a for a in members if a.end is None]
    kind, scope = _scope(watch, inc.family, open_members or members)
    reasons = []
    if kind != inc.kind:
        reasons.append(f"kind changed from {inc.kind.value} to {kind.value}")
        inc.kind_history.append({"at": iso(inc.updated_at), "from": inc.kind.value, "to": kind.value})
        inc.kind = kind
    grew = (set(scope.asns) - set(inc.scope.asns)) or (set(scope.regions) - set(inc.scope.regions)) or (set(scope.services) - set(inc.scope.services))
    if grew:
        added = sorted(map(str, (set(scope.asns) - set(inc.scope.asns)) | (set(scope.regions) - set(inc.scope.regions)) | (set(scope.services) - set(inc.scope.services))))
        reasons.append(f"scope grew: {', '.join(added)}")
    inc.scope = scope
    inc.start = min(a.start for a in members)
    inc.depth = round(max((a.depth for a in members), default=0.0), 4)
    by_source: dict[str, float] = {}
    for a in members:
        by_source[a.source] = by_source.get(a.source, 0.0) + a.severity
    severity = sum(by_source.values())
    # corroborating independent sources rank higher (IODA multiplies per-source scores)
    inc.severity = round(severity * len(by_source), 2)
    inc.anomaly_ids = sorted(a.id for a in members)
    return reasons


def classify(watch: Watch, state: GroupState | None, ticks: Sequence[datetime], anomaly_events: Sequence[AnomalyEvent]) -> ClassifyResult:
    """Fold anomaly events (tick-stamped) into incident events, tick by tick."""
    state = state.model_copy(deep=True) if state else GroupState()
    events: list[IncidentEvent] = []
    by_tick: dict[datetime, list[AnomalyEvent]] = {}
    for ev in anomaly_events:
        by_tick.setdefault(ev.tick, []).append(ev)
    recovery = watch.classification.recovery
    for tick in sorted(set(ticks) | set(by_tick)):
        changed: dict[str, list[str]] = {}
        opened: set[str] = set()
        for ev in by_tick.get(tick, []):
            a = ev.anomaly
            inc_id = state.membership.get(a.id)
            if inc_id is None:
                inc_id = next((i.id for i in state.incidents.values() if i.family is a.family and i.country == a.entity.country), None)
                if inc_id is None:
                    inc_id = stable_id(watch.name, a.family.value, a.start.isoformat())
                    state.incidents[inc_id] = Incident(
                        id=inc_id, watch=watch.name, country=a.entity.country, family=a.family,
                        kind=FAMILY_KIND.get(a.family, IncidentKind.network_outage), start=a.start, detected_at=tick, updated_at=tick,
                    )
                    opened.add(inc_id)
                state.membership[a.id] = inc_id
                changed.setdefault(inc_id, []).append(f"{a.signal} {a.level} on {a.entity.key}")
            elif ev.change == "updated":
                changed.setdefault(inc_id, []).append(f"{a.signal} on {a.entity.key} became {a.level}")
            else:
                changed.setdefault(inc_id, [])
            state.anomalies[a.id] = a
        for inc_id, notes in changed.items():
            inc = state.incidents[inc_id]
            members = [state.anomalies[x] for x, i in state.membership.items() if i == inc_id]
            inc.updated_at = tick
            reasons = _refresh(watch, inc, members)
            if inc_id in opened:
                inc.kind_history = [{"at": iso(tick), "from": None, "to": inc.kind.value}]
                events.append(IncidentEvent(tick=tick, change="opened", reasons=notes, incident=inc.model_copy(deep=True)))
            elif reasons:
                inc.version += 1
                events.append(IncidentEvent(tick=tick, change="updated", reasons=reasons, incident=inc.model_copy(deep=True)))
        for inc_id in list(state.incidents):
            inc = state.incidents[inc_id]
            members = [state.anomalies[x] for x, i in state.membership.items() if i == inc_id]
            if not members or any(a.end is None for a in members):
                continue
            last_end = max(a.end for a in members if a.end is not None)
            if tick - last_end >= recovery:
                inc.end = last_end
                inc.status = "resolved"
                inc.updated_at = tick
                inc.version += 1
                events.append(IncidentEvent(tick=tick, change="resolved", reasons=[f"all signals back to normal since {iso(last_end)}"], incident=inc.model_copy(deep=True)))
                del state.incidents[inc_id]
                for x in [x for x, i in state.membership.items() if i == inc_id]:
                    del state.membership[x]
                    state.anomalies.pop(x, None)
    return ClassifyResult(state=state, events=events)
