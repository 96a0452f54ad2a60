"""The classification fold: anomaly events into incident events, tick by tick, with explicit state (which
open incident each anomaly belongs to, how each incident's kind and scope change, when it resolves)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from pollwatch.classify.scope import FAMILY_KIND, network_types, scope_of
from pollwatch.detect import combined_severity
from pollwatch.models import Anomaly, AnomalyEvent, Family, Incident, IncidentEvent, IncidentKind, Scope, iso, stable_id
from pollwatch.playbook import Watch
from pollwatch.recurring import (
    RecurringState,
    begin_episode,
    end_episode,
    match,
    missed,
    overrun,
    pair_holds,
    remember,
    split_pair,
)


class GroupState(BaseModel):
    incidents: dict[str, Incident] = Field(default_factory=dict)  # open incidents by id
    anomalies: dict[str, Anomaly] = Field(default_factory=dict)  # anomalies of open incidents
    membership: dict[str, str] = Field(default_factory=dict)  # anomaly id -> incident id
    recurring: RecurringState = Field(default_factory=RecurringState)  # ended incidents a later episode may continue


class ClassifyResult(BaseModel):
    state: GroupState
    events: list[IncidentEvent] = Field(default_factory=list)


def _refresh(watch: Watch, inc: Incident, members: list[Anomaly], shrink_only: bool = False) -> list[str]:
    """Recompute an incident from its anomalies; return the reasons it changed (empty if none).

    Only growth (an anomaly joining or turning critical) changes the kind. The scope is everything the
    incident has covered so far; parts whose anomalies have all ended are listed in `scope.recovered`
    (a recovery's tail, a warning that outlives the critical drops, is not a new kind either).
    """
    open_members = [a for a in members if a.end is None]
    if not open_members and inc.anomaly_ids:
        kind, scope = inc.kind, scope_of(watch, inc.family, members)[1]
    else:
        kind, scope = scope_of(watch, inc.family, open_members or members)
        if shrink_only and inc.anomaly_ids:
            kind = inc.kind
    scope.asns = sorted(set(scope.asns) | set(inc.scope.asns))
    scope.regions = sorted(set(scope.regions) | set(inc.scope.regions))
    scope.services = sorted(set(scope.services) | set(inc.scope.services))
    scope.signals = sorted(set(scope.signals) | set(inc.scope.signals))
    scope.providers = [watch.provider_name(a) for a in scope.asns]
    scope.network_types = network_types(watch, scope.asns)
    scope.share = max(scope.share, inc.scope.share)
    if open_members:
        scope.recovered = _recovered(watch, kind, scope, open_members)
    reasons = _changes(watch, inc, kind, scope, bool(open_members))
    inc.scope = scope
    inc.start = min(a.start for a in members)
    inc.depth = round(max((a.depth for a in members), default=0.0), 4)
    # IODA's score: per source (signal) the sum of drop % x minutes, multiplied across corroborating sources
    inc.severity = round(combined_severity(members), 2)
    inc.anomaly_ids = sorted(a.id for a in members)
    return reasons


def _recovered(watch: Watch, kind: IncidentKind, scope: Scope, open_members: list[Anomaly]) -> list[str]:
    """The parts of the scope (providers, regions, services) whose anomalies have all ended."""
    everything = set(scope.asns) | set(scope.regions) | set(scope.services)
    still = (
        {a.entity.asn for a in open_members}
        | {a.entity.region for a in open_members}
        | {a.entity.service for a in open_members}
    )
    if kind is IncidentKind.nationwide_outage and any(
        a.entity.level == "country" and a.level == "critical" for a in open_members
    ):
        still |= set(scope.asns) | set(scope.regions)
    if not still & everything:
        still = everything  # only tails remain
    return (
        [f"{watch.provider_name(a)} (AS{a})" for a in scope.asns if a not in still]
        + [r for r in scope.regions if r not in still]
        + [x for x in scope.services if x not in still]
    )


def _changes(watch: Watch, inc: Incident, kind: IncidentKind, scope: Scope, ongoing: bool) -> list[str]:
    """Why the incident changed (a new kind, a wider scope, parts back to normal); records a new kind."""
    reasons = []
    if kind != inc.kind:
        reasons.append(f"kind changed from {inc.kind.value} to {kind.value}")
        inc.kind_history.append(
            {"at": iso(inc.updated_at), "from": inc.kind.value, "to": kind.value, "share": scope.share}
        )
        inc.kind = kind
    before = set(map(str, inc.scope.asns)) | set(inc.scope.regions) | set(inc.scope.services)
    after = set(map(str, scope.asns)) | set(scope.regions) | set(scope.services)
    if after - before:
        names = {str(a): f"{watch.provider_name(a)} (AS{a})" for a in scope.asns}
        reasons.append(f"scope grew: {', '.join(names.get(x, x) for x in sorted(after - before))}")
    back = [x for x in scope.recovered if x not in inc.scope.recovered]
    if back and ongoing:
        reasons.append(f"back to normal: {', '.join(back)}")
    return reasons


def _members(state: GroupState, inc_id: str) -> list[Anomaly]:
    return [state.anomalies[x] for x, i in state.membership.items() if i == inc_id and x in state.anomalies]


def _served_regions(watch: Watch, asn: int | None) -> set[str]:
    p = watch.provider(asn)
    return set(p.regions) if p else set()


def join_window(watch: Watch, a: Anomaly, b: Anomaly) -> timedelta:
    """How far apart two onsets may be and still be one event: the playbook's `join_gap`, or two
    native steps of the coarser signal (an hourly index shows counties falling an hour apart
    that a 5-minute signal would show minutes apart)."""
    steps = [watch.signals[x].step for x in (a.signal, b.signal) if x in watch.signals]
    return max([watch.classification.join_gap] + [2 * st for st in steps])


def resolve_after(watch: Watch, members: Sequence[Anomaly], recovery: timedelta) -> timedelta:
    """How long after its last anomaly ended an incident resolves: the playbook's `recovery`, but never more than
    two native steps of its coarsest signal (the detectors' own recovery has already waited; a restoration is
    announced within the data's resolution)."""
    steps = [watch.signals[a.signal].step for a in members if a.signal in watch.signals]
    return min(recovery, 2 * max(steps)) if steps else recovery


def related(watch: Watch, a: Anomaly, members: Sequence[Anomaly]) -> bool:
    """Whether anomaly `a` belongs with an incident's anomalies (same family and country assumed)."""
    if any(abs(a.start - m.start) <= join_window(watch, a, m) for m in members):
        return True  # onsets within minutes (or two native steps) of each other: one event
    services = {m.entity.service for m in members if m.entity.service is not None}
    if a.family is Family.service and a.entity.service is not None and services:
        # another service blocked later is another decision (Kazakhstan 2019: Periscope on 9 June,
        # WhatsApp, Facebook and Instagram on 11 June), even on the same networks
        return a.entity.service in services
    if a.entity.level == "country" or any(m.entity.level == "country" for m in members):
        return True
    if a.family is Family.circumvention:
        return True  # circumvention tools are blocked together
    asns = {m.entity.asn for m in members if m.entity.asn is not None}
    regions = {m.entity.region for m in members if m.entity.region is not None}
    e = a.entity
    if e.asn in asns or e.region in regions or e.service in services:
        return True
    if e.asn is not None and _served_regions(watch, e.asn) & regions:
        return True
    return e.region is not None and any(e.region in _served_regions(watch, x) for x in asns)


def find_incident(watch: Watch, state: GroupState, a: Anomaly) -> str | None:
    """The open incident a new anomaly joins, or None for a new incident."""
    candidates = sorted(
        (i for i in state.incidents.values() if i.country == a.entity.country and i.family is a.family),
        key=lambda i: (i.start, i.id),
    )
    for inc in candidates:
        if related(watch, a, _members(state, inc.id)):
            return inc.id
    return None


def classify(
    watch: Watch, state: GroupState | None, ticks: Sequence[datetime], anomaly_events: Sequence[AnomalyEvent]
) -> ClassifyResult:
    """Fold anomaly events (tick-stamped) into incident events, tick by tick."""
    state = state.model_copy(deep=True) if state else GroupState()
    events: list[IncidentEvent] = []
    by_tick: dict[datetime, list[AnomalyEvent]] = {}
    for ev in anomaly_events:
        by_tick.setdefault(ev.tick, []).append(ev)
    for tick in sorted(set(ticks) | set(by_tick)):
        # before this tick's anomalies: a late episode is noted late
        for inc, why in missed(watch, state.recurring, tick):
            events.append(IncidentEvent(tick=tick, change="updated", reasons=[why], incident=inc))
        changes = _TickChanges()
        tick_events = by_tick.get(tick, [])
        for ev in tick_events:
            _take(watch, state, tick, ev, tick_events, changes)
            state.anomalies[ev.anomaly.id] = ev.anomaly
        _report(watch, state, tick, changes, events)
        _close(watch, state, tick, events)
    return ClassifyResult(state=state, events=events)


class _TickChanges:
    """What this tick's anomaly events did to the incidents."""

    def __init__(self) -> None:
        self.changed: dict[str, list[str]] = {}  # incident -> notes on its anomalies
        self.opened: set[str] = set()
        self.grew: set[str] = set()
        self.resumed: dict[
            str, tuple[list[str], bool]
        ] = {}  # recurring incidents whose next episode began: (reasons, post now)


def _take(
    watch: Watch, state: GroupState, tick: datetime, ev: AnomalyEvent, tick_events: list[AnomalyEvent], t: _TickChanges
) -> None:
    """One anomaly event into its incident: the one it belongs to, a recurring incident's next episode, or a new one."""
    a = ev.anomaly
    inc_id = state.membership.get(a.id)
    if inc_id is not None:
        if ev.change == "updated":
            t.changed.setdefault(inc_id, []).append(f"{a.signal} on {a.entity.key} became {a.level}")
            t.grew.add(inc_id)
        else:
            t.changed.setdefault(inc_id, [])
        return
    inc_id = find_incident(watch, state, a)
    hit = None
    if inc_id is None:
        together = [
            e.anomaly
            for e in tick_events
            if e.change == "opened"
            and e.anomaly.family is a.family
            and e.anomaly.entity.country == a.entity.country
            and abs(e.anomaly.start - a.start) <= watch.classification.join_gap
        ]
        hit = match(watch, state.recurring, a, together)
    if hit is not None:
        # the same scope at about the same local time as an incident that ended: its next episode
        inc, why, post = begin_episode(watch, state.recurring, hit, a, tick)
        inc_id = inc.id
        state.incidents[inc_id] = inc
        t.resumed[inc_id] = (why, post)
    elif inc_id is None:
        inc = _new_incident(watch, a.family, a.entity.country, a.start, a.id, tick)
        inc_id = inc.id
        state.incidents[inc_id] = inc
        t.opened.add(inc_id)
    state.membership[a.id] = inc_id
    t.changed.setdefault(inc_id, []).append(f"{a.signal} {a.level} on {a.entity.key}")
    t.grew.add(inc_id)


def _new_incident(
    watch: Watch, family: Family, country: str, start: datetime, anomaly_id: str, detected: datetime
) -> Incident:
    """A new incident, named after its first anomaly: its start and its id too (a CUSUM dates a late block back to
    when its accumulator left zero, which can be the start of an incident already resolved)."""
    return Incident(
        id=stable_id(watch.name, family.value, start.isoformat(), anomaly_id),
        watch=watch.name,
        country=country,
        family=family,
        kind=FAMILY_KIND.get(family, IncidentKind.network_outage),
        start=start,
        detected_at=detected,
        updated_at=detected,
    )


def _report(watch: Watch, state: GroupState, tick: datetime, t: _TickChanges, events: list[IncidentEvent]) -> None:
    """Refresh each incident this tick changed, and say so where people should hear of it."""
    for inc_id, notes in t.changed.items():
        inc = state.incidents[inc_id]
        members = _members(state, inc_id)
        inc.updated_at = tick
        reasons = _refresh(watch, inc, members, shrink_only=inc_id not in t.grew)
        if inc_id in t.opened:
            inc.kind_history = [{"at": iso(tick), "from": None, "to": inc.kind.value, "share": inc.scope.share}]
            events.append(IncidentEvent(tick=tick, change="opened", reasons=notes, incident=inc.model_copy(deep=True)))
        elif inc_id in t.resumed:
            why, post = t.resumed[inc_id]
            inc.version += 1
            if post:
                events.append(
                    IncidentEvent(
                        tick=tick, change="updated", reasons=why + reasons, incident=inc.model_copy(deep=True)
                    )
                )
        elif reasons and inc.pattern is not None and inc.kind in {e.kind for e in inc.episodes[:-1]}:
            # an episode of a known pattern growing into a scope its earlier episodes had: the episode's end says it
            pass
        elif reasons:
            inc.version += 1
            events.append(
                IncidentEvent(tick=tick, change="updated", reasons=reasons, incident=inc.model_copy(deep=True))
            )


def _close(watch: Watch, state: GroupState, tick: datetime, events: list[IncidentEvent]) -> None:
    """Note incidents running over, and resolve those whose anomalies have all ended long enough ago."""
    for inc_id in list(state.incidents):
        inc = state.incidents[inc_id]
        members = [state.anomalies[x] for x, i in state.membership.items() if i == inc_id]
        if members and (note := overrun(watch, inc, tick)) is not None:
            inc.version += 1
            inc.updated_at = tick
            events.append(
                IncidentEvent(tick=tick, change="updated", reasons=[note], incident=inc.model_copy(deep=True))
            )
        if not members or any(a.end is None for a in members):
            continue
        last_end = max(a.end for a in members if a.end is not None)
        if tick - last_end < resolve_after(watch, members, watch.classification.recovery):
            continue
        inc.end = last_end
        inc.status = "resolved"
        inc.updated_at = tick
        inc.version += 1
        holds, how = pair_holds(watch, state.recurring, inc, max_step(watch, members))
        if holds:
            change, why = end_episode(watch, state.recurring, inc, tick, members, how)
            events.append(
                IncidentEvent(
                    tick=tick,
                    change=change,
                    reasons=why or [f"all signals back to normal since {iso(last_end)}"],
                    incident=inc.model_copy(deep=True),
                )
            )
        else:
            _split(watch, state, tick, inc, members, how, events)
        del state.incidents[inc_id]
        for x in [x for x, i in state.membership.items() if i == inc_id]:
            del state.membership[x]
            state.anomalies.pop(x, None)


def max_step(watch: Watch, members: Sequence[Anomaly]) -> timedelta:
    """The coarsest native step of the members' signals (what their onsets are known to)."""
    return max((watch.signals[a.signal].step for a in members if a.signal in watch.signals), default=timedelta(0))


def _split(
    watch: Watch,
    state: GroupState,
    tick: datetime,
    inc: Incident,
    members: list[Anomaly],
    how: str,
    events: list[IncidentEvent],
) -> None:
    """A lone pair whose second episode did not end as the first: the first incident as it was (one more version, in
    its thread, saying so), and the second episode as its own incident, opened and resolved now."""
    t = split_pair(state.recurring, inc)
    first = t.before.model_copy(deep=True, update={"version": inc.version, "updated_at": tick})
    own = _new_incident(watch, inc.family, inc.country, inc.episodes[-1].start, t.anomaly, t.began)
    own.updated_at = tick
    _refresh(watch, own, members)
    own.kind_history = [{"at": iso(t.began), "from": None, "to": own.kind.value, "share": own.scope.share}]
    opened = own.model_copy(deep=True)
    own.end, own.status, own.version = inc.end, "resolved", own.version + 1
    note = f"not the same schedule after all: {how}"
    events += [
        IncidentEvent(tick=tick, change=change, reasons=[why], incident=i)
        for change, why, i in (
            ("updated", f"{note}; the later cut is now its own incident ({own.id})", first),
            ("opened", f"followed until its end as the next episode of incident {first.id}; {note}", opened),
            ("resolved", f"split off incident {first.id}, {note}; back to normal since {iso(own.end)}", own),
        )
    ]
    state.recurring.recent[own.id] = own.model_copy(deep=True)
    remember(state.recurring, own, members)
