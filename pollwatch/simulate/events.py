"""What the simulator injects and what it says happened: event specs, ground-truth labels, the scenario they make,
and ready-made event sets (one of each kind on election day; random ones for evaluation)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from pollwatch.models import Cause, IncidentKind, Observation, iso, stable_id
from pollwatch.playbook import Watch
from pollwatch.timeutil import floor_time


class EventSpec(BaseModel):
    """An event to inject. Empty scope lists mean 'all' for the dimension the kind acts on."""

    kind: IncidentKind
    start: datetime
    end: datetime
    cause: Cause = Cause.unknown
    regions: list[str] = Field(default_factory=list)
    asns: list[int] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)
    depth: float = 0.95  # share of connectivity lost, or failure probability for blocks
    factor: float = 6.0  # latency multiplier for throttling
    ramp: timedelta = timedelta(0)  # outages: reach full depth over this long, and recover over it (0: a switch)
    bgp: bool = True  # outages: routes withdrawn too (False: data-plane-only loss, BGP stays up)


class Label(BaseModel):
    """Ground truth for one injected event."""

    id: str
    kind: IncidentKind
    country: str
    regions: list[str] = Field(default_factory=list)
    asns: list[int] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)
    start: datetime
    end: datetime
    cause: Cause

    def to_public(self) -> dict:
        d = self.model_dump(mode="json")
        d["start"], d["end"] = iso(self.start), iso(self.end)
        return d


class Scenario(BaseModel):
    watch: str
    start: datetime
    end: datetime
    seed: int
    observations: list[Observation]
    labels: list[Label]


def label_of(watch: Watch, ev: EventSpec) -> Label:
    asns = ev.asns
    services = ev.services
    if ev.kind in (IncidentKind.nationwide_outage,):
        asns = [p.asn for p in watch.providers]
    if ev.kind is IncidentKind.service_block and not services:
        services = [s.name for s in watch.services]
    if ev.kind is IncidentKind.circumvention_block and not services:
        services = [s.name for s in watch.circumvention]
    return Label(
        id=stable_id(watch.name, ev.kind, iso(ev.start), *ev.regions, *ev.asns, *ev.services, length=12),
        kind=ev.kind,
        country=watch.country or "",
        regions=ev.regions,
        asns=asns,
        services=services,
        start=ev.start,
        end=ev.end,
        cause=ev.cause,
    )


def election_day_events(watch: Watch) -> list[EventSpec]:
    """One event of every kind on election day, timed like the Kazakhstan 2019 playbook case."""
    at = watch.at_offset
    h = timedelta(hours=1)
    regions = [r.code for r in watch.regions]
    mobile = [p.asn for p in watch.providers if p.type == "mobile"] or [p.asn for p in watch.providers]
    fixed = [p.asn for p in watch.providers if p.type == "fixed"] or [p.asn for p in watch.providers]
    services = [s.name for s in watch.services]
    return [
        EventSpec(
            kind=IncidentKind.regional_outage,
            start=at(3 * h),
            end=at(5.5 * h),
            regions=regions[-1:],
            cause=Cause.power_outage,
        ),
        EventSpec(
            kind=IncidentKind.circumvention_block,
            start=at(8 * h),
            end=at(22 * h),
            services=[c.name for c in watch.circumvention],
            cause=Cause.government_directed,
            depth=0.9,
        ),
        EventSpec(
            kind=IncidentKind.service_block,
            start=at(9 * h),
            end=at(18 * h),
            services=services[:1],
            cause=Cause.government_directed,
            depth=0.9,
        ),
        EventSpec(
            kind=IncidentKind.network_outage,
            start=at(timedelta(hours=11, minutes=15)),
            end=at(timedelta(hours=12, minutes=5)),
            asns=fixed[-1:],
            cause=Cause.technical,
        ),
        EventSpec(
            kind=IncidentKind.throttling,
            start=at(15 * h),
            end=at(18 * h),
            services=services[-2:-1] or services[:1],
            asns=mobile,
            cause=Cause.government_directed,
            factor=6.0,
        ),
        EventSpec(
            kind=IncidentKind.nationwide_outage,
            start=at(20 * h),
            end=at(21 * h),
            cause=Cause.government_directed,
            depth=0.97,
        ),
    ]


def random_events(
    watch: Watch, start: datetime, end: datetime, n: int, seed: int, block_depth: tuple[float, float] | None = None
) -> list[EventSpec]:
    """`n` non-overlapping events of random kinds between start and end (for evaluation suites).

    `block_depth` (low, high): service blocks fail that share of tests, drawn uniformly (partial
    blocks, as on Safaricom in Kenya 2023: 15-70 %); None keeps EventSpec's default (0.95). The
    depths come from their own random stream, so the events' kinds and times do not change."""
    rng = random.Random(seed)
    depth_rng = random.Random(seed * 104729 + 1)
    kinds = list(IncidentKind)
    span = (end - start) / max(n, 1)
    out = []
    regions = [r.code for r in watch.regions]
    asns = [p.asn for p in watch.providers]
    services = [s.name for s in watch.services]
    tools = [c.name for c in watch.circumvention]
    for i in range(n):
        kind = kinds[i % len(kinds)] if i < len(kinds) else rng.choice(kinds)
        slot = start + span * i
        onset = floor_time(slot + span * rng.uniform(0.25, 0.45), timedelta(minutes=5))
        hours = rng.uniform(1.0, min(6.0, span / timedelta(hours=1) * 0.4))
        ev_end = onset + timedelta(hours=hours)
        kw: dict = {}
        if kind is IncidentKind.regional_outage:
            kw["regions"] = rng.sample(regions, 1)
        elif kind is IncidentKind.network_outage:
            kw["asns"] = rng.sample(asns, 1)
        elif kind is IncidentKind.service_block:
            kw["services"] = rng.sample(services, rng.randint(1, min(3, len(services))))
            if block_depth is not None:
                kw["depth"] = round(depth_rng.uniform(*block_depth), 3)
        elif kind is IncidentKind.circumvention_block:
            kw["services"] = tools
        elif kind is IncidentKind.throttling:
            kw["services"] = rng.sample(services, 1)
            kw["asns"] = asns
        cause = (
            Cause.government_directed
            if kind
            in (
                IncidentKind.nationwide_outage,
                IncidentKind.service_block,
                IncidentKind.circumvention_block,
                IncidentKind.throttling,
            )
            else rng.choice([Cause.technical, Cause.power_outage])
        )
        out.append(EventSpec(kind=kind, start=onset, end=ev_end, cause=cause, **kw))
    return out


def demo_range(watch: Watch) -> tuple[datetime, datetime, datetime]:
    """(history start, election day 00:00 local, the next day 06:00 local) as UTC datetimes."""
    day = watch.at_offset(timedelta(0))
    return day - timedelta(days=3), day, watch.at_offset(timedelta(days=1, hours=6))
