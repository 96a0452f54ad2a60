"""Coverage: which of a watch's regions, providers and services have data from which source.

A pure function over observations (and gaps): one row per (dimension, source) with how many
points came in, how many carried a value, when the last value was, and a status:
`ok` (most points have values), `partial`, `blind spot` (points or gaps but no values: e.g. a
mobile network with no OONI measurements) or `missing` (an expected source sent nothing at all).
Used by `pollwatch coverage` and by the collect task's Prefect table artifact.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, Field

from pollwatch.models import Gap, Observation, entity_key, iso
from pollwatch.playbook import Watch

OK_SHARE = 0.8


class CoverageRow(BaseModel):
    """Coverage of one region, provider, service (or the country) by one source."""

    kind: str  # country | region | provider | service
    name: str
    entity: str
    source: str
    signals: list[str] = Field(default_factory=list)
    points: int = 0
    with_data: int = 0
    gaps: int = 0
    last_data: datetime | None = None
    missing: list[str] = Field(default_factory=list)  # e.g. providers without OONI data for a service
    status: str = "missing"

    @property
    def share(self) -> float:
        return self.with_data / self.points if self.points else 0.0

    def table_row(self) -> dict[str, str | int | float]:
        return {
            "kind": self.kind,
            "name": self.name,
            "source": self.source,
            "status": self.status,
            "with data": f"{self.with_data}/{self.points}",
            "share": round(self.share, 3),
            "gaps": self.gaps,
            "last data": iso(self.last_data) or "-",
            "signals": ",".join(self.signals),
            "without data": ", ".join(self.missing),
        }


class _Tally:
    def __init__(self) -> None:
        self.points = 0
        self.with_data = 0
        self.last: datetime | None = None
        self.signals: set[str] = set()

    def add(self, o: Observation) -> None:
        self.points += 1
        self.signals.add(o.signal)
        if o.value is not None:
            self.with_data += 1
            if self.last is None or o.time > self.last:
                self.last = o.time

    def merge(self, other: "_Tally") -> None:
        self.points += other.points
        self.with_data += other.with_data
        self.signals |= other.signals
        if other.last and (self.last is None or other.last > self.last):
            self.last = other.last


def _status(points: int, with_data: int, gaps: int) -> str:
    if points == 0 and gaps == 0:
        return "missing"
    if with_data == 0:
        return "blind spot"
    return "ok" if with_data / max(points, 1) >= OK_SHARE else "partial"


def coverage_report(
    watch: Watch,
    observations: Iterable[Observation],
    gaps: Iterable[Gap] = (),
    expected: dict[str, list[str]] | None = None,
) -> list[CoverageRow]:
    """Rows for the country, each region, provider and service, per source seen or expected.

    `expected` maps a dimension kind (country, region, provider, service) to the sources that
    should cover it; by default from the watch's enabled sources (IODA: country, regions,
    providers; OONI: providers, services; RIPEstat: country).
    """
    if expected is None:
        on = {n for n, s in watch.sources.items() if s.enabled}
        expected = {
            "country": [s for s in ("ioda", "ripestat") if s in on],
            "region": [s for s in ("ioda",) if s in on],
            "provider": [s for s in ("ioda", "ooni") if s in on],
            "service": [s for s in ("ooni",) if s in on],
        }
    cov = _Coverage(watch, observations, gaps, expected)
    cov.country_and_regions()
    cov.providers()
    cov.services()
    return cov.rows


class _Coverage:
    """What each (entity, source) had: tallies of its observations and counts of its gaps, turned into rows."""

    def __init__(
        self, watch: Watch, observations: Iterable[Observation], gaps: Iterable[Gap], expected: dict[str, list[str]]
    ) -> None:
        self.watch, self.cc, self.expected = watch, watch.country or "", expected
        self.tally: dict[tuple[str, str], _Tally] = defaultdict(_Tally)  # (entity key, source)
        for o in observations:
            if o.country == self.cc:
                self.tally[(o.entity_key, o.source)].add(o)
        self.gaps: dict[tuple[str, str], int] = defaultdict(int)
        for g in gaps:
            self.gaps[(g.entity, g.source)] += 1
        self.rows: list[CoverageRow] = []
        self.services_watched = list(watch.services) + list(watch.circumvention)

    def sources_for(self, kind: str, keys: set[str]) -> list[str]:
        seen = {src for (k, src) in self.tally if k in keys} | {src for (k, src) in self.gaps if k in keys}
        return list(dict.fromkeys(list(self.expected.get(kind, [])) + sorted(seen)))

    def row(self, kind: str, name: str, key: str, source: str, tally: _Tally, gaps: int, missing: list[str]) -> None:
        self.rows.append(
            CoverageRow(
                kind=kind,
                name=name,
                entity=key,
                source=source,
                signals=sorted(tally.signals),
                points=tally.points,
                with_data=tally.with_data,
                gaps=gaps,
                last_data=tally.last,
                missing=missing,
                status=_status(tally.points, tally.with_data, gaps),
            )
        )

    def _merged(self, keys: Iterable[str], src: str, t: _Tally) -> tuple[int, list[str]]:
        """Merge the keys' tallies for `src` into `t`; returns their gaps and the keys without data."""
        n_gaps, empty = 0, []
        for k in keys:
            st = self.tally.get((k, src))
            if st:
                t.merge(st)
            n_gaps += self.gaps.get((k, src), 0)
            if st is None or st.with_data == 0:
                empty.append(k)
        return n_gaps, empty

    def country_and_regions(self) -> None:
        cc = self.cc
        for src in self.sources_for("country", {cc}):
            self.row("country", cc, cc, src, self.tally.get((cc, src), _Tally()), self.gaps.get((cc, src), 0), [])
        for r in self.watch.regions:
            key = entity_key(cc, r.code, None, None)
            for src in self.sources_for("region", {key}):
                tally, n_gaps = self.tally.get((key, src), _Tally()), self.gaps.get((key, src), 0)
                self.row("region", f"{r.name} ({r.code})", key, src, tally, n_gaps, [])

    def providers(self) -> None:
        """Each provider's own series plus, per source, everything measured on its network."""
        for p in self.watch.providers:
            key = entity_key(self.cc, None, p.asn, None)
            svc_keys = {entity_key(self.cc, None, p.asn, s.name): s.name for s in self.services_watched}
            for src in self.sources_for("provider", {key} | set(svc_keys)):
                t = _Tally()
                t.merge(self.tally.get((key, src), _Tally()))
                n_gaps, empty = self._merged(svc_keys, src, t)
                measures_services = src == "ooni" or any(
                    (sk, src) in self.tally or (sk, src) in self.gaps for sk in svc_keys
                )
                missing = [svc_keys[k] for k in empty] if measures_services else []
                self.row(
                    "provider",
                    f"{p.name} (AS{p.asn}, {p.type})",
                    key,
                    src,
                    t,
                    self.gaps.get((key, src), 0) + n_gaps,
                    missing,
                )

    def services(self) -> None:
        """Each service across the providers."""
        for s in self.services_watched:
            keys = {entity_key(self.cc, None, p.asn, s.name): p for p in self.watch.providers}
            for src in self.sources_for("service", set(keys)):
                t = _Tally()
                n_gaps, empty = self._merged(keys, src, t)
                missing = [f"{keys[k].name} (AS{keys[k].asn}, {keys[k].type})" for k in empty]
                key = entity_key(self.cc, None, None, s.name)
                self.row("service", f"{s.name} ({s.test})", key, src, t, n_gaps, missing)


def blind_spots(rows: list[CoverageRow]) -> list[str]:
    """Human-readable blind spots: what has no data from a source that should cover it."""
    out = []
    for r in rows:
        if r.status in ("blind spot", "missing"):
            why = (
                "no data at all"
                if r.status == "missing"
                else f"{r.points} point(s), none with a value" + (f", {r.gaps} gap(s)" if r.gaps else "")
            )
            out.append(f"{r.kind} {r.name}: no data from {r.source} ({why})")
        elif r.kind == "service" and r.missing:
            out.append(f"service {r.name}: no {r.source} data on {', '.join(r.missing)}")
    return out


def render_table(rows: list[CoverageRow]) -> str:
    """A plain-text table of the rows (the CLI's output)."""
    cols = ["kind", "name", "source", "status", "with data", "share", "gaps", "last data"]
    table = [{c: str(r.table_row()[c]) for c in cols} for r in rows]
    widths = {c: max([len(c)] + [len(t[c]) for t in table]) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols), "  ".join("-" * widths[c] for c in cols)]
    lines += ["  ".join(t[c].ljust(widths[c]) for c in cols) for t in table]
    return "\n".join(lines)
