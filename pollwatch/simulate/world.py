"""The simulated country and its signals: cells (region x provider) with routed /24 blocks, random streams
in a fixed order, and one method per signal family; `simulate()` runs them over a range."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta

from pollwatch.models import IncidentKind, Observation
from pollwatch.playbook import Watch
from pollwatch.simulate.events import EventSpec, Scenario, label_of
from pollwatch.timeutil import floor_time

CONNECTIVITY_SIGNALS = ("bgp", "active_probing", "telescope")
_CONNECTIVITY_STEPS = {
    "bgp": timedelta(minutes=5),
    "active_probing": timedelta(minutes=10),
    "telescope": timedelta(minutes=5),
}
# (scale per /24, relative noise, diurnal amplitude) of each connectivity signal
_CONNECTIVITY_SHAPE = {"bgp": (1.0, 0.001, 0.0), "active_probing": (0.6, 0.015, 0.05), "telescope": (40.0, 0.08, 0.15)}
_OUTAGES = (IncidentKind.nationwide_outage, IncidentKind.regional_outage, IncidentKind.network_outage)


def _cells(watch: Watch, rng: random.Random) -> dict[tuple[str, int], float]:
    """/24 blocks per (region, provider): fixed providers are large, mobile ones smaller."""
    regions = [r.code for r in watch.regions] or [f"{watch.country}-ALL"]
    cells = {}
    for p in watch.providers:
        size = 900.0 if p.type == "fixed" else 350.0
        weights = [rng.uniform(0.5, 1.5) for _ in regions]
        total = sum(weights)
        for region, w in zip(regions, weights):
            cells[(region, p.asn)] = size * w / total
    return cells


def simulate(
    watch: Watch,
    start: datetime,
    end: datetime,
    events: list[EventSpec] | None = None,
    seed: int = 1,
    missing_rate: float = 0.005,
    service_base: tuple[float, float] | None = None,
    country_services: bool = False,
    other_space: float = 0.0,
) -> Scenario:
    """Generate observations for [start, end) with the given events injected.

    `service_base` (low, high): each network's tests of each service fail at a baseline rate
    drawn uniformly from this range (flaky probes and networks; OONI's Kenya data shows 0-10 %),
    varying hour to hour around it; None: every test fails with probability 0.02.
    `country_services`: also the country's tests of each service, all networks together (asn None),
    as the OONI source reports them.
    `other_space`: the share of the country's address space in networks the watch does not list (in
    the country's and regions' series, never a provider's); 0: the watch's providers are the country."""
    events = events or []
    world = _World(watch, events, seed, missing_rate, service_base, other_space)
    for signal in CONNECTIVITY_SIGNALS:
        world.connectivity(signal, start, end)
    if "service_failure_rate" in watch.signals:
        world.service_tests(start, end, country_services)
    if "rtt_ms" in watch.signals:
        world.latency(start, end)
    obs = world.obs
    obs.sort(key=lambda o: (o.time, o.source, o.signal, o.entity_key))
    return Scenario(
        watch=watch.name, start=start, end=end, seed=seed, observations=obs, labels=[label_of(watch, e) for e in events]
    )


def _grid(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    """The times of a `step` grid in [start, end)."""
    t = floor_time(start, step)
    if t < start:
        t += step
    while t < end:
        yield t
        t += step


class _World:
    """The simulated country: its cells, random streams and injected events, and the observations so far.

    The random draws happen in a fixed order (cells, then each signal in turn), so a seed gives the same
    observations; `base_rng` is the services' baseline failure rates' own stream, so that drawing them does
    not change the other signals."""

    def __init__(
        self,
        watch: Watch,
        events: list[EventSpec],
        seed: int,
        missing_rate: float,
        service_base: tuple[float, float] | None,
        other_space: float,
    ):
        self.watch, self.events, self.missing_rate, self.service_base = watch, events, missing_rate, service_base
        rng = self.rng = random.Random(seed)
        self.country = watch.country or "XX"
        cells = self.cells = _cells(watch, rng)
        self.regions = sorted({r for r, _ in cells})
        self.asns = asns = sorted({a for _, a in cells})
        if other_space > 0:  # unlisted networks (asn 0), spread over the regions by their own random stream
            other_rng = random.Random(seed * 6007 + 5)
            listed = sum(cells.values())
            weights = {r: other_rng.uniform(0.5, 1.5) for r in self.regions}
            for r, wt in weights.items():
                cells[(r, 0)] = listed * other_space / (1 - other_space) * wt / sum(weights.values())
        self.tz_offset_h = watch.election_midnight.utcoffset().total_seconds() / 3600  # type: ignore[union-attr]
        self.obs: list[Observation] = []
        # every network has some tests by default (the draws stay: they keep each seed's observations)
        self.ooni_blind = {a for a in asns if rng.random() < 0.0}
        self.rtt_base = {(a, s.name): rng.uniform(60, 220) for a in asns for s in watch.services}
        self.base_rng = random.Random(seed * 7907 + 3)
        self.fail_base = {
            (a, name): self.base_rng.uniform(*service_base) if service_base else 0.02
            for a in asns
            for name in [s.name for s in watch.services] + [c.name for c in watch.circumvention]
        }

    def active(self, t: datetime, kinds: tuple[IncidentKind, ...]) -> list[EventSpec]:
        return [e for e in self.events if e.kind in kinds and e.start <= t < e.end]

    def cell_factor(self, t: datetime, region: str, asn: int, signal: str | None = None) -> float:
        f = 1.0
        for e in self.active(t, _OUTAGES):
            if signal == "bgp" and not e.bgp:
                continue
            depth = e.depth
            if e.ramp > timedelta(0):
                depth *= min(1.0, (t - e.start) / e.ramp, (e.end - t) / e.ramp)
            if e.kind is IncidentKind.nationwide_outage and (not e.asns or asn in e.asns):
                f *= 1 - depth
            elif e.kind is IncidentKind.regional_outage and region in e.regions:
                f *= 1 - depth
            elif e.kind is IncidentKind.network_outage and asn in e.asns:
                f *= 1 - depth
        return f

    def diurnal(self, t: datetime, amp: float) -> float:
        local_h = (t.hour + t.minute / 60 + self.tz_offset_h) % 24
        return 1 + amp * math.sin((local_h - 9) / 24 * 2 * math.pi)

    def emit(
        self,
        t: datetime,
        signal: str,
        value: float | None,
        region: str | None = None,
        asn: int | None = None,
        service: str | None = None,
        count: int | None = None,
        source: str = "ioda",
    ) -> None:
        """One observation; a value goes missing (null) at `missing_rate`."""
        if value is not None and self.rng.random() < self.missing_rate:
            value = None
        self.obs.append(
            Observation(
                time=t,
                source=source,
                signal=signal,
                country=self.country,
                region=region,
                asn=asn,
                service=service,
                value=value,
                count=count,
            )
        )

    def asn_connectivity(self, t: datetime, asn: int) -> float:
        cells = self.cells
        total = sum(v for (r, a), v in cells.items() if a == asn)
        return sum(v * self.cell_factor(t, r, a) for (r, a), v in cells.items() if a == asn) / total

    def connectivity(self, signal: str, start: datetime, end: datetime) -> None:
        """An IODA-like connectivity signal for the country, each region and each provider."""
        cfg = self.watch.signals.get(signal)
        if cfg is None:
            return
        cells, rng = self.cells, self.rng
        scale, noise, amp = _CONNECTIVITY_SHAPE[signal]
        for t in _grid(start, end, cfg.step or _CONNECTIVITY_STEPS[signal]):
            factors = {c: self.cell_factor(t, *c, signal=signal) for c in cells}
            d = self.diurnal(t, amp)

            def val(total: float) -> float:
                return round(max(0.0, total * scale * d * (1 + rng.gauss(0, noise))), 3)

            self.emit(t, signal, val(sum(cells[c] * factors[c] for c in cells)))
            if signal != "telescope":
                for r in self.regions:
                    self.emit(t, signal, val(sum(cells[c] * factors[c] for c in cells if c[0] == r)), region=r)
                for a in self.asns:
                    self.emit(t, signal, val(sum(cells[c] * factors[c] for c in cells if c[1] == a)), asn=a)

    def service_tests(self, start: datetime, end: datetime, country_services: bool) -> None:
        """Service and circumvention tests (OONI-like), hourly per provider, and per country if asked."""
        for t in _grid(start, end, timedelta(hours=1)):
            pooled: dict[str, list[int]] = {}
            for a in self.asns:
                self._tests_of(t, a, pooled)
            if country_services:
                for svc, (fails, n) in sorted(pooled.items()):
                    self._failure_rate(t, None, svc, fails, n)

    def _tests_of(self, t: datetime, a: int, pooled: dict[str, list[int]]) -> None:
        """One hour of one provider's tests of each service and tool; adds them to `pooled`."""
        watch, rng = self.watch, self.rng
        conn = self.asn_connectivity(t + timedelta(minutes=30), a)
        tests = [(s.name, 8, False) for s in watch.services] + [(c.name, 4, True) for c in watch.circumvention]
        for svc, rate, circ in tests:
            n = 0 if a in self.ooni_blind else _poisson(rng, rate * self.diurnal(t, 0.4) * conn)
            if n == 0:
                self.emit(t, "service_failure_rate", None, asn=a, service=svc, count=0, source="ooni")
                continue
            p_fail = self.fail_base[(a, svc)]
            if self.service_base:
                p_fail = min(1.0, p_fail * math.exp(self.base_rng.gauss(0, 0.5)))  # hour-to-hour variation
            kinds = (IncidentKind.circumvention_block,) if circ else (IncidentKind.service_block,)
            for e in self.active(t + timedelta(minutes=30), kinds):
                if svc in e.services and (not e.asns or a in e.asns):
                    p_fail = e.depth if not self.service_base else e.depth + (1 - e.depth) * p_fail
            fails = sum(1 for _ in range(n) if rng.random() < p_fail)
            self._failure_rate(t, a, svc, fails, n)
            tot = pooled.setdefault(svc, [0, 0])
            tot[0] += fails
            tot[1] += n

    def _failure_rate(self, t: datetime, asn: int | None, service: str, fails: int, n: int) -> None:
        """A measured failure rate (never missing: an hour without tests is the null one)."""
        self.obs.append(
            Observation(
                time=t,
                source="ooni",
                signal="service_failure_rate",
                country=self.country,
                asn=asn,
                service=service,
                value=round(fails / n, 4),
                count=n,
            )
        )

    def latency(self, start: datetime, end: datetime) -> None:
        """Web-probe latency per provider and service: none while the provider is down or the service blocked."""
        for t in _grid(start, end, self.watch.signals["rtt_ms"].step):
            for a in self.asns:
                up = self.asn_connectivity(t, a) > 0.5
                for s in self.watch.services:
                    value = self._rtt(t, a, s.name) if up else None
                    self.emit(t, "rtt_ms", value, asn=a, service=s.name, source="webprobe")

    def _rtt(self, t: datetime, a: int, service: str) -> float | None:
        f = 1.0
        for e in self.active(t, (IncidentKind.throttling,)):
            if service in e.services and (not e.asns or a in e.asns):
                f *= e.factor
        blocked = any(
            service in e.services and (not e.asns or a in e.asns) for e in self.active(t, (IncidentKind.service_block,))
        )
        if blocked:
            return None
        return round(self.rtt_base[(a, service)] * f * self.diurnal(t, 0.1) * math.exp(self.rng.gauss(0, 0.08)), 1)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
