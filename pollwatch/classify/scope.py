"""An incident's kind and scope from its anomalies: which providers, regions and services, the share of the
country affected (address space, or the depth of a country-level drop), mobile or fixed networks."""

from __future__ import annotations

from collections.abc import Sequence

from pollwatch.models import Anomaly, Family, IncidentKind, Scope
from pollwatch.playbook import Watch

FAMILY_KIND = {
    Family.service: IncidentKind.service_block,
    Family.circumvention: IncidentKind.circumvention_block,
    Family.performance: IncidentKind.throttling,
}


def connectivity_scope(watch: Watch, anomalies: list[Anomaly]) -> tuple[IncidentKind, Scope]:
    """Kind and scope of a connectivity incident from its (open) anomalies.

    Nationwide needs the country to fall: its own series past critical with a majority of its address
    space affected, or regions holding a majority of it past critical (regions partition the country;
    the watch's providers need not: other networks carry the rest). Providers falling, however many of
    the watch's, are a network outage unless the country's series falls with them. And one network or one
    region is not the whole country, however much address space it holds (a fixed-line incumbent may hold
    most of the /24s while most people are on mobile networks that stay up): it is nationwide only when it
    holds nearly all of it (`classification.single_network_share`), or the country fell well beyond it
    (`_beyond_one`)."""
    conn = [a for a in anomalies if a.family is Family.connectivity] or list(anomalies)
    crit = [a for a in conn if a.level == "critical"]
    basis = crit or conn
    asns = sorted({a.entity.asn for a in basis if a.entity.asn is not None})
    regions = sorted({a.entity.region for a in basis if a.entity.region is not None})
    country_hit = any(a.entity.level == "country" for a in basis)
    share = affected_share(watch, asns, regions, conn)
    majority = watch.classification.nationwide_share
    if crit:
        country_crit = any(a.entity.level == "country" for a in crit)
        wide = _beyond_one(watch, asns, regions, country_depth(conn))
        if (country_crit and (not asns and not regions or (share >= majority and wide))) or (
            region_share(watch, regions) >= majority and (len(regions) >= 2 or wide)
        ):
            kind = IncidentKind.nationwide_outage
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


BEYOND = 0.2  # the country fell this much more than the one network's (or region's) share: others fell too


def _beyond_one(watch: Watch, asns: list[int], regions: list[str], depth: float) -> bool:
    """Whether the cut is more than one network (or, without networks, one region): two or more of them, one
    holding nearly the whole country (`classification.single_network_share`), one whose share is unknown (the
    country's own series says how much fell), or a country-level drop `BEYOND` that one's share."""
    units = asns or regions
    if len(units) != 1:
        return True
    own = provider_share(watch, asns) if asns else region_share(watch, regions)
    if own <= 0 or own >= watch.classification.single_network_share:
        return True
    return depth >= own + BEYOND


def provider_share(watch: Watch, asns: Sequence[int | None]) -> float:
    """The share of the country's address space in these providers (their `share`, measured from the baseline by
    pollwatch.baseline.with_address_shares or declared). One whose share is unknown adds nothing, never
    1/number of providers: the country's own series says how much fell."""
    return min(sum((p.share or 0.0) for a in set(asns) if (p := watch.provider(a)) is not None), 1.0)


def region_share(watch: Watch, regions: Sequence[str | None]) -> float:
    """The share of the country in these regions: their measured address space, else (no per-region /24 counts,
    e.g. an index per province) each of the watch's regions an equal part."""
    found = {r.code: r for x in regions if x is not None and (r := watch.region(x)) is not None}
    return min(sum(r.share if r.share is not None else 1 / len(watch.regions) for r in found.values()), 1.0)


def affected_share(watch: Watch, asns: list[int], regions: list[str], anomalies: list[Anomaly]) -> float:
    """Share of the country affected: the providers' or regions' address space, or the depth of a country-level drop."""
    return max(provider_share(watch, asns), region_share(watch, regions), country_depth(anomalies))


def country_depth(anomalies: Sequence[Anomaly]) -> float:
    """The deepest drop of the country's own connectivity series (the share of its address space gone)."""
    return max(
        (
            a.depth
            for a in anomalies
            if a.family is Family.connectivity and a.entity.level == "country" and a.direction.value == "drop"
        ),
        default=0.0,
    )


def network_types(watch: Watch, asns: list[int]) -> list[str]:
    """`mobile`, `fixed` (or `mixed`) networks among the affected providers, from the watch's provider table."""
    return sorted({p.type for p in watch.providers if p.asn in asns})


def network_label(watch: Watch, asns: list[int]) -> str:
    """'mobile-only', 'fixed-line only', 'mobile and fixed' or '' when unknown."""
    types = set(network_types(watch, asns))
    if not types or "mixed" in types:
        return ""
    if types == {"mobile"}:
        all_mobile = {p.asn for p in watch.providers if p.type == "mobile"}
        return "mobile-only" + (" (every mobile network)" if all_mobile <= set(asns) else "")
    if types == {"fixed"}:
        return "fixed-line only"
    return "mobile and fixed"


def scope_of(watch: Watch, family: Family, anomalies: list[Anomaly]) -> tuple[IncidentKind, Scope]:
    if family is Family.connectivity:
        kind, scope = connectivity_scope(watch, anomalies)
    else:
        kind = FAMILY_KIND[family]
        asns = sorted({a.entity.asn for a in anomalies if a.entity.asn is not None})
        scope = Scope(
            asns=asns,
            regions=sorted({a.entity.region for a in anomalies if a.entity.region is not None}),
            services=sorted({a.entity.service for a in anomalies if a.entity.service is not None}),
            share=round(provider_share(watch, asns), 4),
        )
    scope.providers = [watch.provider_name(a) for a in scope.asns]
    scope.signals = sorted({a.signal for a in anomalies})
    scope.network_types = network_types(watch, scope.asns)
    return kind, scope
