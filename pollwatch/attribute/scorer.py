"""Scoring: the gathered evidence into a cause and a confidence; attribution of incidents and their events;
a responder's override."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from pollwatch.attribute.context import AttributionContext, sigmoid
from pollwatch.attribute.weights import weights_for
from pollwatch.attribute.registry import Facts, registered
from pollwatch.models import Anomaly, AnomalyEvent, Cause, Evidence, Incident, IncidentEvent, iso
from pollwatch.playbook import Watch


def gather_evidence(
    watch: Watch,
    incident: Incident,
    anomalies: Sequence[Anomaly] = (),
    context: AttributionContext | None = None,
    weights: dict[str, float] | None = None,
) -> list[Evidence]:
    """The registered evidence items about an incident, weighed (`weights`: the watch's by default), in the
    order of registration; weights and `x` unrounded (the scorer rounds them)."""
    facts = Facts(watch, incident, anomalies, context, weights_for(watch) if weights is None else weights)
    out: list[Evidence] = []
    for item in registered():
        got = item(facts)
        if isinstance(got, Evidence):
            out.append(got)
        elif got:
            out.extend(got)
    return out


def score(items: Sequence[Evidence], bias: float, min_confidence: float = 0.5) -> tuple[Cause, float, list[Evidence]]:
    """Cause, confidence and the evidence list (strongest first, then the score) from the gathered items."""
    logit = bias
    evidence = []
    against: dict[Cause, float] = {}
    for e in items:
        logit += e.weight
        if e.weight < 0:
            against[e.supports] = against.get(e.supports, 0.0) - e.weight
        numbers = {**e.numbers, "x": round(e.numbers["x"], 3)}
        evidence.append(e.model_copy(update={"weight": round(e.weight, 3), "numbers": numbers}))
    p = sigmoid(logit)
    if p >= min_confidence:
        cause, confidence = Cause.government_directed, p
    elif against:
        cause, confidence = max(against.items(), key=lambda kv: (kv[1], kv[0] != Cause.technical))[0], 1 - p
    else:
        cause, confidence = Cause.unknown, 0.0
    evidence.sort(key=lambda e: -abs(e.weight))
    unjudged = [f"{e.name} ({e.numbers['not_judged']})" for e in evidence if e.numbers.get("not_judged")]
    evidence.append(
        Evidence(
            name="score",
            supports=cause,
            weight=round(logit, 3),
            detail=f"P(government-directed) = {p:.0%} from {sum(1 for e in evidence if e.weight)} weighed item(s)"
            + (f"; not judged: {', '.join(unjudged)}" if unjudged else ""),
            numbers={
                "p_government": round(p, 4),
                "logit": round(logit, 3),
                "against": {k.value: round(v, 3) for k, v in against.items()},
            },
        )
    )
    return cause, round(confidence, 4), evidence


def attribute_incident(
    watch: Watch, incident: Incident, anomalies: Sequence[Anomaly] = (), context: AttributionContext | None = None
) -> Incident:
    """Return the incident with cause, confidence and evidence filled in (an override wins)."""
    inc = incident.model_copy(deep=True)
    weights = weights_for(watch)
    items = gather_evidence(watch, inc, anomalies, context, weights)
    cause, confidence, inc.evidence = score(items, weights.get("bias", 0.0), watch.attribution.min_confidence)
    if inc.override:
        inc.cause = Cause(inc.override["cause"])
        inc.cause_confidence = 1.0
    else:
        inc.cause, inc.cause_confidence = cause, confidence
    return inc


def _as_of(history: Sequence[Anomaly | AnomalyEvent]) -> dict[str, list[tuple[datetime | None, Anomaly]]]:
    """Versions of each anomaly with the tick they are from (None: from before every tick given)."""
    out: dict[str, list[tuple[datetime | None, Anomaly]]] = {}
    for item in history:
        tick, a = (item.tick, item.anomaly) if isinstance(item, AnomalyEvent) else (None, item)
        out.setdefault(a.id, []).append((tick, a))
    return out


def _version_at(versions: list[tuple[datetime | None, Anomaly]], tick: datetime) -> Anomaly | None:
    """The newest version of an anomaly as it was known at `tick` (live ticks and a replay see the same)."""
    best = None
    for t, a in versions:
        if t is None or t <= tick:
            best = a
    return best


def attribute(
    watch: Watch,
    events: Sequence[IncidentEvent],
    known: dict[str, Incident] | None = None,
    anomalies: Sequence[Anomaly | AnomalyEvent] = (),
    context: AttributionContext | None = None,
) -> list[IncidentEvent]:
    """Attribute every incident event; an attribution change is noted as a reason on the event.

    `anomalies` are the incidents' anomalies: AnomalyEvents (each event is attributed with the
    versions known at its tick, so a replay says what live ticks said) and/or Anomalies from before.
    `known` holds the incidents as last recorded (with any responder override), by id;
    `context.past` earlier incidents (for recurrence); incidents met earlier in `events` count too.
    """
    known = dict(known or {})
    ctx = context.model_copy() if context else AttributionContext()
    past = {i.id: i for i in ctx.past}
    past.update(known)
    versions = _as_of(anomalies)
    out = []
    for ev in events:
        inc = ev.incident
        prior = known.get(inc.id)
        if prior is not None and (prior.override or prior.responses) and not (inc.override or inc.responses):
            # a responder's override or action bumped the stored version: stay ahead of it, so this alert is not taken
            # for that one
            inc = inc.model_copy(
                update={
                    "override": prior.override,
                    "responses": prior.responses,
                    "version": max(inc.version, prior.version + 1),
                }
            )
        members = [
            a for aid in inc.anomaly_ids if aid in versions and (a := _version_at(versions[aid], ev.tick)) is not None
        ]
        ctx.past = [i for i in past.values() if i.id != inc.id]
        inc = attribute_incident(watch, inc, members, ctx)
        reasons = list(ev.reasons)
        if prior is not None and prior.cause != inc.cause:
            reasons.append(
                f"attribution changed from {prior.cause.value} to {inc.cause.value} ({inc.cause_confidence:.0%})"
            )
        known[inc.id] = inc
        past[inc.id] = inc
        out.append(ev.model_copy(update={"incident": inc, "reasons": reasons}))
    return out


def apply_override(incident: Incident, cause: Cause, who: str, why: str, at: datetime | None = None) -> Incident:
    """A responder confirms or overrides the attribution; kept with who, why and when."""
    if not who.strip() or not why.strip():
        raise ValueError("an override needs who made it (--by) and why (--why)")
    at = (at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    inc = incident.model_copy(deep=True)
    inc.override = {
        "cause": cause.value,
        "by": who,
        "why": why,
        "at": iso(at),
        "previous": {"cause": incident.cause.value, "confidence": incident.cause_confidence},
    }
    inc.cause, inc.cause_confidence = cause, 1.0
    inc.version += 1
    inc.updated_at = max(inc.updated_at, at)
    return inc
