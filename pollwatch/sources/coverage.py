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
    cc = watch.country or ""
    if expected is None:
        on = {n for n, s in watch.sources.items() if s.enabled}
        expected = {
            "country": [s for s in ("ioda", "ripestat") if s in on],
            "region": [s for s in ("ioda",) if s in on],
            "provider": [s for s in ("ioda", "ooni") if s in on],
            "service": [s for s in ("ooni",) if s in on],
        }
    by_entity: dict[tuple[str, str], _Tally] = defaultdict(_Tally)  # (entity key, source)
    for o in observations:
        if o.country == cc:
            by_entity[(o.entity_key, o.source)].add(o)
    gap_count: dict[tuple[str, str], int] = defaultdict(int)
    for g in gaps:
        gap_count[(g.entity, g.source)] += 1

    rows: list[CoverageRow] = []

    def row(
        kind: str, name: str, key: str, source: str, tally: _Tally, gaps_n: int, missing: list[str] | None = None
    ) -> None:
        rows.append(
            CoverageRow(
                kind=kind,
                name=name,
                entity=key,
                source=source,
                signals=sorted(tally.signals),
                points=tally.points,
                with_data=tally.with_data,
                gaps=gaps_n,
                last_data=tally.last,
                missing=missing or [],
                status=_status(tally.points, tally.with_data, gaps_n),
            )
        )

    def sources_for(kind: str, keys: set[str]) -> list[str]:
        seen = {src for (k, src) in by_entity if k in keys} | {src for (k, src) in gap_count if k in keys}
        return list(dict.fromkeys(list(expected.get(kind, [])) + sorted(seen)))

    # the country and its regions
    for src in sources_for("country", {cc}):
        row("country", cc, cc, src, by_entity.get((cc, src), _Tally()), gap_count.get((cc, src), 0))
    for r in watch.regions:
        key = entity_key(cc, r.code, None, None)
        for src in sources_for("region", {key}):
            row(
                "region",
                f"{r.name} ({r.code})",
                key,
                src,
                by_entity.get((key, src), _Tally()),
                gap_count.get((key, src), 0),
            )

    # providers: their own series plus, per source, everything measured on their network
    services = list(watch.services) + list(watch.circumvention)
    for p in watch.providers:
        key = entity_key(cc, None, p.asn, None)
        svc_keys = {entity_key(cc, None, p.asn, s.name): s.name for s in services}
        for src in sources_for("provider", {key} | set(svc_keys)):
            t = _Tally()
            t.merge(by_entity.get((key, src), _Tally()))
            n_gaps = gap_count.get((key, src), 0)
            measures_services = src == "ooni" or any(
                (sk, src) in by_entity or (sk, src) in gap_count for sk in svc_keys
            )
            missing = []
            for sk, sname in svc_keys.items():
                st = by_entity.get((sk, src))
                if st:
                    t.merge(st)
                n_gaps += gap_count.get((sk, src), 0)
                if measures_services and (st is None or st.with_data == 0):
                    missing.append(sname)
            row("provider", f"{p.name} (AS{p.asn}, {p.type})", key, src, t, n_gaps, missing)

    # services: across the providers
    for s in services:
        keys = {entity_key(cc, None, p.asn, s.name): p for p in watch.providers}
        for src in sources_for("service", set(keys)):
            t = _Tally()
            n_gaps = 0
            missing = []
            for k, p in keys.items():
                st = by_entity.get((k, src))
                if st:
                    t.merge(st)
                n_gaps += gap_count.get((k, src), 0)
                if st is None or st.with_data == 0:
                    missing.append(f"{p.name} (AS{p.asn}, {p.type})")
            row("service", f"{s.name} ({s.test})", entity_key(cc, None, None, s.name), src, t, n_gaps, missing)
    return rows


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
