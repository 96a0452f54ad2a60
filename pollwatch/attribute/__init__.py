"""Attribution: a likely cause for each incident, with the evidence and numbers behind it.

A scorer over named pieces of evidence (docs/attribution.md). Each item has a value `x` in
[0, 1] (how strongly it is present) and a weight `w`; the score is a logistic model

    P(government-directed) = sigmoid(bias + sum(w * x))

whose weights for the items the IODA curated outage list can show (onset minute, signal
agreement, scope, recurrence one day later, other countries at the same time) were fitted on that
list by `pollwatch.calibrate` (balanced classes, cross-validated in bench/attribution.py); the
others (providers together, BGP withdrawal, milestones, censorship methods, gradual change, a
single upstream, recorded power/weather/cable events, Cloudflare Radar's label) carry hand-set
weights documented below. A playbook's `attribution.weights` overrides any of them by name.

The cause is `government_directed` when P >= `attribution.min_confidence`; otherwise the
non-government cause the evidence against points to most (a recorded power cut: power_outage,
other countries at once: cable_cut, ...), or `unknown` when nothing speaks against it either.
Every item is reported on the incident (`Evidence.weight` is its signed contribution `w * x`),
strongest first, with a final `score` item holding P and the logit.

A responder's override, when present, always wins and is carried into later alerts.

Modules: `evidence_signals` and `evidence_timing` (the items, one function each with its hand-set weight:
adding an item touches only the module it goes in), `registry` (the `@evidence` decorator and the `Facts` the
items look at), `weights` (the fitted weights, and the defaults), `scorer` (gathering, the logistic score,
attributing incident events, overrides) and `context` (external events; primitives shared with calibration).
"""

from pollwatch.attribute.context import (
    RECURRENCE_TOLERANCE,
    SAME_TIME_WINDOW,
    AttributionContext,
    ExternalEvent,
    events_from_corroborations,
    onset_alignment,
    recurrence_days,
    same_time_days,
    schedule_episodes,
    sigmoid,
    watch_events,
)
from pollwatch.attribute.weights import CALIBRATED_WEIGHTS, DEFAULT_WEIGHTS, EXPERT_WEIGHTS, weights_for
from pollwatch.attribute.registry import REGISTRY
from pollwatch.attribute.scorer import apply_override, attribute, attribute_incident, gather_evidence, score

__all__ = [
    "CALIBRATED_WEIGHTS",
    "DEFAULT_WEIGHTS",
    "EXPERT_WEIGHTS",
    "RECURRENCE_TOLERANCE",
    "REGISTRY",
    "SAME_TIME_WINDOW",
    "AttributionContext",
    "ExternalEvent",
    "apply_override",
    "attribute",
    "attribute_incident",
    "events_from_corroborations",
    "gather_evidence",
    "onset_alignment",
    "recurrence_days",
    "same_time_days",
    "schedule_episodes",
    "score",
    "sigmoid",
    "watch_events",
    "weights_for",
]
