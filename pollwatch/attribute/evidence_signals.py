"""Evidence items from what the measurements show: the onset's minute, the scope, providers falling together,
the observatories agreeing, routes, the outage's shape, upstreams, services failing while connectivity holds,
censorship methods. One function per item, registered by name with its hand-set weight (or none, when its
weight is fitted: pollwatch.attribute.weights); adding an item touches only the module it goes in. Items are
gathered and reported in the order they are defined here, then those of evidence_timing."""

from __future__ import annotations

from datetime import datetime, timedelta

from pollwatch.attribute.context import (
    CENSORSHIP_OUTAGES,
    TOGETHER_WINDOW,
    onset_alignment,
)
from pollwatch.attribute.registry import Facts, evidence
from pollwatch.classify import network_label
from pollwatch.models import Anomaly, Cause, Evidence, Family, IncidentKind


@evidence("onset_on_the_hour", "onset_on_the_half_hour")
def onset(f: Facts) -> Evidence:
    """Onset on the local hour or half hour, at the resolution of the finest signal that saw it."""
    start, watch = f.start, f.watch
    near = [a for a in f.members if a.start - start <= max(f.step(a.signal), timedelta(minutes=5))]
    resolution = min((f.step(a.signal) for a in near), default=timedelta(minutes=5))
    local = start.astimezone(watch.tz)
    numbers = {"local_time": f"{local:%H:%M}", "resolution_min": round(resolution.total_seconds() / 60, 1)}
    if resolution >= timedelta(minutes=30):
        return f.weigh(
            "onset_on_the_hour",
            0.0,
            f"onset {local:%H:%M} local, but the signals that saw it are "
            f"{resolution.total_seconds() / 60:.0f}-minute bins: onset minute not informative",
            numbers,
        )
    where, minutes = onset_alignment(local, resolution)
    numbers["minutes_past_hour"] = round(minutes, 1)
    if where == "hour":
        return f.weigh(
            "onset_on_the_hour",
            1.0,
            f"onset at {local:%H:%M} local, on the hour (shutdowns start on the hour in 71% of cases, other "
            "outages 23%)",
            numbers,
        )
    if where == "half_hour":
        return f.weigh("onset_on_the_half_hour", 1.0, f"onset at {local:%H:%M} local, on the half hour", numbers)
    return f.weigh("onset_on_the_hour", 0.0, f"onset at {local:%H:%M} local, not on the hour or half hour", numbers)


@evidence("nationwide_scope", "single_network")
def scope(f: Facts) -> Evidence | None:
    """Connectivity: the whole country, or a single network."""
    inc = f.incident
    if not f.is_conn:
        return None
    share = inc.scope.share
    if inc.kind is IncidentKind.nationwide_outage:
        return f.weigh("nationwide_scope", 1.0, f"nationwide: {share:.0%} of the country affected", {"share": share})
    if inc.kind is IncidentKind.network_outage and len(inc.scope.asns) == 1:
        return f.weigh(
            "single_network",
            1.0,
            f"a single network affected ({', '.join(inc.scope.providers)})",
            {"providers": 1, "share": share},
            Cause.technical,
        )
    return None


# independent networks dropping within minutes: one switch
@evidence(providers_together=0.8)
def providers_together(f: Facts) -> Evidence | None:
    """Connectivity: several independent providers dropping within minutes of each other."""
    if not f.is_conn:
        return None
    firsts: dict[int, datetime] = {}
    for a in f.conn:
        if a.entity.asn is not None and a.level == "critical":
            firsts[a.entity.asn] = min(firsts.get(a.entity.asn, a.start), a.start)
    if len(firsts) < 2:
        return None
    spread = max(firsts.values()) - min(firsts.values())
    together = spread <= TOGETHER_WINDOW
    return f.weigh(
        "providers_together",
        1.0 if together else 0.0,
        f"{len(firsts)} providers dropped within {spread.total_seconds() / 60:.0f} min of each other"
        + ("" if together else " (staggered, not one switch)"),
        {"providers": len(firsts), "onset_spread_min": round(spread.total_seconds() / 60, 1)},
    )


# IODA's own detector recorded the outage: confirms it, says nothing of its cause (reported, not weighed)
@evidence(ioda_record=0.0)
def ioda_record(f: Facts) -> Evidence | None:
    """Connectivity: IODA's own detector recorded the outage (confirms it; says nothing of its cause)."""
    records = f.ioda_records if f.is_conn else []
    if not records:
        return None
    return f.weigh(
        "ioda_record",
        1.0,
        f"IODA's own detector recorded it: {len(records)} alert(s)/event(s) from "
        f"{min(e.start for e in records):%H:%MZ} ({', '.join(sorted({e.signal or '?' for e in records}))}; "
        f"{', '.join(sorted({e.entity or f.incident.country for e in records})[:5])})",
        {"records": len(records), "signals": sorted({e.signal or "?" for e in records})},
    )


@evidence("all_signals_agree")
def all_signals_agree(f: Facts) -> Evidence | None:
    """Connectivity: all signals agreeing (a signal IODA's own records show falling counts, even where the
    watch's data missed it)."""
    if not f.is_conn:
        return None
    ioda_signals = f.ioda_signals
    by_ioda = sorted({e.signal for e in f.ioda_records if e.signal} & ioda_signals)
    observed = f.ctx.observed_signals
    configured = sorted(s for s in ioda_signals if observed is None or s in observed or s in by_ioda)
    seen = sorted(({a.signal for a in f.conn} | set(by_ioda)) & set(configured))
    if not configured:
        return None
    agree = len(seen) == len(configured) and len(seen) >= 2
    return f.weigh(
        "all_signals_agree",
        1.0 if agree else 0.0,
        f"{len(seen)} of {len(configured)} signals agree ({', '.join(seen) or '-'})"
        + (f"; IODA's records show {', '.join(by_ioda)}" if by_ioda else ""),
        {"signals": len(seen), "of": len(configured), "seen": seen, "ioda_records": by_ioda},
    )


# bgp_withdrawal: routes withdrawn (shutdowns and cable cuts both do this);
# data_plane_only: routes stay while hosts go dark: typical of power cuts
@evidence(bgp_withdrawal=0.3, data_plane_only=-0.6)
def bgp_withdrawal(f: Facts) -> Evidence | None:
    """Connectivity: routes withdrawn, versus hosts going dark while routes stay (data-plane-only loss)."""
    observed = f.ctx.observed_signals
    if not (f.is_conn and "bgp" in f.watch.signals and (observed is None or "bgp" in observed) and f.conn):
        return None
    bgp = [a for a in f.conn if a.signal == "bgp"]
    if bgp:
        return f.weigh(
            "bgp_withdrawal",
            1.0,
            f"routes withdrawn: BGP-visible /24s fell {max(a.depth for a in bgp):.0%}",
            {"bgp_depth": round(max(a.depth for a in bgp), 3)},
        )
    return f.weigh(
        "data_plane_only",
        1.0,
        "routes stayed announced while hosts stopped answering (data-plane-only loss)",
        {"signals": sorted({a.signal for a in f.conn})},
        Cause.power_outage,
    )


# degradation or recovery over hours, not a switch
@evidence(gradual_change=-1.5)
def gradual_change(f: Facts) -> Evidence | None:
    """Connectivity: gradual onset or recovery (a clean cut stays near its peak depth the whole time)."""
    drops = [a for a in f.conn if a.direction.value == "drop" and a.points >= 4 and a.depth > 0.2]
    if not (f.is_conn and drops):
        return None
    ratios = []
    for a in drops:
        step_min = f.step(a.signal).total_seconds() / 60
        ratios.append(a.severity / (a.points * step_min * 100 * a.depth))
    fullness = min(1.0, sum(ratios) / len(ratios))
    x = (0.8 - fullness) / 0.3
    return f.weigh(
        "gradual_change",
        x,
        f"average depth {fullness:.0%} of the peak ({'gradual onset or recovery' if x > 0 else 'abrupt on and off'})",
        {"mean_to_peak": round(fullness, 3)},
        Cause.technical,
    )


# every affected network buys transit from one upstream
@evidence(single_upstream=-1.2)
def single_upstream(f: Facts) -> Evidence | None:
    """Connectivity: every affected network buys transit from one upstream, and no unaffected one does."""
    watch, inc = f.watch, f.incident
    if not f.is_conn:
        return None
    affected = [watch.provider(a) for a in inc.scope.asns]
    ups = [set(p.upstreams) for p in affected if p is not None and p.upstreams]
    if not ups or len(ups) != len(affected):
        return None
    common = set.intersection(*ups)
    unaffected_on_it = [p for p in watch.providers if p.asn not in inc.scope.asns and common & set(p.upstreams)]
    if len(common) != 1 or unaffected_on_it or len(affected) >= len(watch.providers):
        return None
    up = next(iter(common))
    return f.weigh(
        "single_upstream",
        1.0,
        f"every affected network buys transit from AS{up}, and no unaffected one does",
        {"upstream": up, "networks": len(affected)},
        Cause.technical,
    )


# connectivity normal while named services fail
@evidence(service_specific=3.5)
def service_specific(f: Facts) -> Evidence | None:
    """Services, tools or speed: connectivity normal while named services fail."""
    watch, inc = f.watch, f.incident
    if f.is_conn:
        return None
    n_prov = len(inc.scope.asns)
    what = {
        Family.service: "services fail",
        Family.circumvention: "circumvention tools fail",
        Family.performance: "services slowed down",
    }.get(inc.family, "services fail")
    label = network_label(watch, inc.scope.asns)
    observed = f.ctx.observed_signals
    conn_signals = [
        s for s, c in watch.signals.items() if c.family is Family.connectivity and (observed is None or s in observed)
    ]
    missing = (
        "the watch lists no providers"
        if not watch.providers
        else f"no provider's series {what.split()[-1]}: only pooled series"
        if n_prov == 0
        else "the watch observed no connectivity signal"
        if not conn_signals
        else None
    )
    if missing:
        # evidence that needs providers or connectivity data the watch does not have is absent, not maximal
        return f.weigh(
            "service_specific",
            0.0,
            f"could not judge whether connectivity stayed normal while {what}: {missing}",
            {"services": inc.scope.services, "providers": n_prov, "not_judged": missing},
        )
    return f.weigh(
        "service_specific",
        1.0 if n_prov >= 2 else 0.6,
        f"connectivity normal while {what} ({', '.join(inc.scope.services) or '-'}) on {n_prov} "
        "provider(s)" + (f", {label}" if label else ""),
        {"services": inc.scope.services, "providers": n_prov, "networks": label or None},
    )


def _outage_types(a: Anomaly) -> set[str]:
    ev = a.evidence or {}
    out: set[str] = set()
    if isinstance(ev.get("outage_type"), str):
        out.add(ev["outage_type"])
    types = ev.get("outage_types")
    if isinstance(types, dict):
        out.update(k for k, v in types.items() if v)
    elif isinstance(types, list):
        out.update(str(t) for t in types)
    if a.signal.startswith("probe_outage_"):
        out.add(a.signal.removeprefix("probe_outage_"))
    return out


# DNS tampering, TLS/SNI resets, blockpages
@evidence(censorship_method=1.5)
def censorship_method(f: Facts) -> Evidence | None:
    """Interference consistent with censorship methods (web probes' outage types)."""
    methods: dict[str, set[int]] = {}
    for a in f.members:
        for t in _outage_types(a) & CENSORSHIP_OUTAGES:
            methods.setdefault(t, set()).add(a.entity.asn or 0)
    if not methods:
        return None
    nets = set().union(*methods.values())
    return f.weigh(
        "censorship_method",
        1.0 if len(nets) >= 2 else 0.7,
        f"interference consistent with censorship: {', '.join(sorted(methods))} on {len(nets)} network(s)",
        {"methods": sorted(methods), "networks": len(nets)},
    )
