"""The evidence registry: each evidence item is a small function of an incident's `Facts`, registered by name
with `@evidence(...)`, returning its `Evidence` (or None when it has nothing to say); `gather_evidence`
runs them in the order they were registered.

An item's `Evidence.weight` is its signed contribution `w * x` to the logit (x in [0, 1]: how strongly the item
is present; w: its weight, by name, from the watch's weights), `supports` the cause it points to (government
directed when it counts for, the cause it names when against, technical by default, unknown when it weighs
nothing) and `numbers` its figures plus `x` and `w`. Weights and `x` are rounded by the scorer, after summing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from pollwatch.attribute.context import SAME_TIME_WINDOW, AttributionContext, ExternalEvent, in_scope, watch_events
from pollwatch.models import Anomaly, Cause, Evidence, Family, Incident
from pollwatch.playbook import Watch

Item = Callable[["Facts"], "Evidence | list[Evidence] | None"]

# name -> the function that gives it (a function may give one of several names: the onset's minute is on the
# hour or on the half hour); in the order of registration, which is the order items are gathered and reported
REGISTRY: dict[str, Item] = {}
# name -> hand-set weight, for the items whose weight is not fitted (pollwatch.attribute.weights)
HAND_SET: dict[str, float] = {}


def evidence(*fitted: str, **hand_set: float) -> Callable[[Item], Item]:
    """Register an evidence item under the names it may report: `fitted` ones take their weight from
    CALIBRATED_WEIGHTS (pollwatch.calibrate fits them), the others are given with their hand-set weight."""

    def register(fn: Item) -> Item:
        for name in (*fitted, *hand_set):
            if name in REGISTRY:
                raise ValueError(
                    f"evidence item {name!r} is registered twice ({REGISTRY[name].__name__}, {fn.__name__})"
                )
            REGISTRY[name] = fn
        HAND_SET.update(hand_set)
        return fn

    return register


def registered() -> list[Item]:
    """The registered functions, each once, in the order of registration."""
    return list(dict.fromkeys(REGISTRY.values()))


class Facts:
    """What the evidence items look at: the incident, its anomalies, the watch, the context, and the facts
    several items share (computed once, when first asked for)."""

    def __init__(
        self,
        watch: Watch,
        incident: Incident,
        anomalies: Sequence[Anomaly],
        context: AttributionContext | None,
        weights: dict[str, float],
    ):
        self.watch, self.incident, self.weights = watch, incident, weights
        self.ctx = context or AttributionContext()
        ids = set(incident.anomaly_ids)
        self.members = [a for a in anomalies if a.id in ids] or list(anomalies)
        self.conn = [a for a in self.members if a.family is Family.connectivity]
        self.is_conn = incident.family is Family.connectivity
        self.start: datetime = incident.start

    def step(self, signal: str) -> timedelta:
        """The native step of a signal (5 minutes when the watch does not have it)."""
        cfg = self.watch.signals.get(signal)
        return cfg.step if cfg else timedelta(minutes=5)

    @cached_property
    def events(self) -> list[ExternalEvent]:
        """The coordinator's events from the playbook, then the sources'."""
        return watch_events(self.watch) + list(self.ctx.events)

    @cached_property
    def ioda_records(self) -> list[ExternalEvent]:
        """IODA's own records of the outage (alerts, events) around the onset, for the country or the incident's
        scope."""
        return [
            e
            for e in self.ctx.events
            if e.type == "ioda_outage"
            and in_scope(e.entity, self.incident)
            and abs(e.start - self.start) <= SAME_TIME_WINDOW
        ]

    @cached_property
    def ioda_signals(self) -> set[str]:
        """The watch's connectivity signals from IODA."""
        return {s for s, c in self.watch.signals.items() if c.family is Family.connectivity and c.source == "ioda"}

    def weigh(
        self,
        name: str,
        x: float,
        detail: str,
        numbers: dict[str, Any] | None = None,
        against: Cause | None = None,
        weight: float | None = None,
    ) -> Evidence:
        """The item `name` present with strength `x` (clamped to [0, 1]), weighed by the watch's weight for it
        (`weight` overrides it); `against`: the cause it points to when it counts against."""
        x = max(0.0, min(1.0, x))
        w = self.weights.get(name, 0.0) if weight is None else weight
        contribution = w * x
        supports = (
            Cause.government_directed
            if contribution > 0
            else (against or Cause.technical)
            if contribution < 0
            else Cause.unknown
        )
        return Evidence(
            name=name,
            supports=supports,
            weight=contribution,
            detail=detail,
            numbers={**(numbers or {}), "x": x, "w": w},
        )
