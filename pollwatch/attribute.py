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
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, Field

from pollwatch.classify import network_label
from pollwatch.models import Anomaly, AnomalyEvent, Cause, Evidence, Family, Incident, IncidentEvent, IncidentKind, iso
from pollwatch.playbook import Watch
from pollwatch.sources.ioda import DATASOURCE_SIGNALS
from pollwatch.recurring import earlier_onsets

# --- weights ----------------------------------------------------------------------------------

# Fitted by `python -m pollwatch.calibrate` on ground_truth/ioda_curated_outages_2018_2020.csv
# (government-ordered and exam shutdowns vs cable cuts, power, weather and technical failures;
# L2-regularised logistic regression with balanced class weights). Re-fit and paste when the
# feature definitions change; bench/attribution.py reports their cross-validated accuracy.
CALIBRATED_WEIGHTS: dict[str, float] = {
    "bias": -2.88,
    "onset_on_the_hour": 1.16,
    "onset_on_the_half_hour": 1.47,
    "all_signals_agree": 0.76,
    "nationwide_scope": 1.5,
    "single_network": -0.84,
    "recurrence_one_day": 1.22,
    "recurrence_same_time": 1.51,
    "recurring_schedule": 1.7,
    "other_countries_same_time": -1.76,
}

# Hand-set (the curated list cannot show these); sized against the calibrated ones.
EXPERT_WEIGHTS: dict[str, float] = {
    "providers_together": 0.8,  # independent networks dropping within minutes: one switch
    "bgp_withdrawal": 0.3,  # routes withdrawn (shutdowns and cable cuts both do this)
    "data_plane_only": -0.6,  # routes stay while hosts go dark: typical of power cuts
    "election_milestone": 1.0,  # onset near polls open/close, counting, results
    "political_event": 1.0,  # near a protest / announcement the coordinator recorded
    "service_specific": 3.5,  # connectivity normal while named services fail
    "censorship_method": 1.5,  # DNS tampering, TLS/SNI resets, blockpages
    "gradual_change": -1.5,  # degradation or recovery over hours, not a switch
    "single_upstream": -1.2,  # every affected network buys transit from one upstream
    "power_or_weather_event": -3.5,  # a recorded power cut, storm, earthquake
    "cable_event": -3.5,  # a recorded cable cut
    "radar_label": 3.0,  # Cloudflare Radar's cause label (sign from the label)
    # IODA's own detector recorded the outage: confirms it, says nothing of its cause (reported, not weighed)
    "ioda_record": 0.0,
}

DEFAULT_WEIGHTS: dict[str, float] = {**CALIBRATED_WEIGHTS, **EXPERT_WEIGHTS}

# which non-government cause an item that counts against points to
AGAINST_CAUSE: dict[str, Cause] = {
    "single_network": Cause.technical,
    "other_countries_same_time": Cause.cable_cut,
    "data_plane_only": Cause.power_outage,
    "gradual_change": Cause.technical,
    "single_upstream": Cause.technical,
    "cable_event": Cause.cable_cut,
}

POLITICAL_EVENTS = {"protest", "announcement", "political"}
EVENT_CAUSE = {
    "power_outage": Cause.power_outage,
    "weather": Cause.weather_or_disaster,
    "disaster": Cause.weather_or_disaster,
}
CENSORSHIP_OUTAGES = {"dns_nxdomain", "dns_bogon", "dns_error", "tcp_reset", "tls_failure", "http_blockpage"}
RADAR_CAUSES = {
    "GOVERNMENT_DIRECTED": Cause.government_directed,
    "POWER_OUTAGE": Cause.power_outage,
    "CABLE_CUT": Cause.cable_cut,
    "WEATHER": Cause.weather_or_disaster,
    "NATURAL_DISASTER": Cause.weather_or_disaster,
    "TECHNICAL_PROBLEMS": Cause.technical,
    "TECHNICAL_PROBLEM": Cause.technical,
    "MAINTENANCE": Cause.technical,
}

MILESTONE_WINDOW = timedelta(hours=2)
RECURRENCE_TOLERANCE = timedelta(minutes=30)
TOGETHER_WINDOW = timedelta(minutes=15)
SAME_TIME_WINDOW = timedelta(minutes=30)
RECURRENCE_DAYS = 7


class ExternalEvent(BaseModel):
    """An event outside the watch's own measurements: recorded by the coordinator or a source."""

    name: str
    # protest | announcement | political | power_outage | weather | disaster | cable_cut | neighbour_outage |
    # radar_outage
    type: str
    start: datetime
    end: datetime | None = None
    regions: list[str] = Field(default_factory=list)
    country: str | None = None
    cause: str | None = None
    source: str = "coordinator"
    signal: str | None = None  # the pollwatch signal an observatory's record is about (IODA: its datasource)
    entity: str | None = None  # the pollwatch entity key of the record (country, region or network)


class AttributionContext(BaseModel):
    """What attribution knows beyond the incident: earlier incidents, other countries, recorded events."""

    past: list[Incident] = Field(default_factory=list)  # earlier incidents of this watch / country
    others: list[Incident] = Field(default_factory=list)  # incidents in other countries (neighbours)
    events: list[ExternalEvent] = Field(default_factory=list)  # from sources (e.g. Cloudflare Radar)
    # signals the watch had data for (any non-null observation) when attributing; None: not known, the playbook's
    # signals are taken as observed. A signal without data is no evidence: its silence says nothing.
    observed_signals: set[str] | None = None


def events_from_corroborations(records: Iterable[Any]) -> list[ExternalEvent]:
    """The observatories' own outage records (pollwatch.sources' Corroboration records) as events: Cloudflare
    Radar annotations carrying Radar's cause label, IODA's outage events and its warning or critical alerts
    (`ioda_outage`, with the signal and entity they are about; an alert back to `normal` is a recovery)."""
    out = []
    for r in records:
        kind = getattr(r, "kind", None)
        if kind == "radar_annotation" and getattr(r, "cause", None):
            out.append(
                ExternalEvent(
                    name=getattr(r, "description", None) or r.id,
                    type="radar_outage",
                    start=r.start,
                    end=r.end,
                    country=r.country,
                    cause=r.cause,
                    source="radar",
                )
            )
        elif kind == "ioda_event" or (
            kind == "ioda_alert" and str(getattr(r, "level", "") or "").lower() in ("warning", "critical")
        ):
            ds = getattr(r, "datasource", None) or ""
            out.append(
                ExternalEvent(
                    name=f"IODA {kind.removeprefix('ioda_')} {ds} {r.entity}",
                    type="ioda_outage",
                    start=r.start,
                    end=r.end,
                    country=r.country,
                    source="ioda",
                    signal=DATASOURCE_SIGNALS.get(ds, ds or None),
                    entity=r.entity,
                )
            )
    return out


def _in_scope(entity: str | None, incident: Incident) -> bool:
    """Whether an entity key is the incident's country or one of its regions or networks."""
    if not entity or entity == incident.country:
        return True
    part = entity.partition("/")[2]
    kind, _, code = part.partition("=")
    return (kind == "region" and code in incident.scope.regions) or (
        kind == "asn" and code.isdigit() and int(code) in incident.scope.asns
    )


def watch_events(watch: Watch) -> list[ExternalEvent]:
    """The coordinator's events from the playbook, with UTC times."""
    out = []
    for e in watch.events:
        start = watch.local_time(e.at)
        end = watch.local_time(e.end) if e.end else start + MILESTONE_WINDOW
        out.append(
            ExternalEvent(
                name=e.name,
                type=e.type,
                start=start,
                end=end,
                regions=e.regions,
                country=e.country,
                cause=e.cause,
                source=e.source,
            )
        )
    return out


# --- primitives shared with calibration ------------------------------------------------------


def onset_alignment(local: datetime, resolution: timedelta = timedelta(minutes=1)) -> tuple[str | None, float]:
    """('hour' | 'half_hour' | None, minutes past the hour) of a local onset time.

    With data binned every `resolution`, an onset is on the hour when its bin starts on the hour.
    """
    minutes = local.minute + local.second / 60
    res = max(resolution.total_seconds() / 60, 1.0)
    if minutes < res:
        return "hour", minutes
    if 30 <= minutes < 30 + res:
        return "half_hour", minutes
    return None, minutes


def recurrence_days(
    start: datetime, earlier: Iterable[datetime], tolerance: timedelta = RECURRENCE_TOLERANCE
) -> float | None:
    """Hours between `start` and an earlier onset exactly one day before it (within tolerance), else None."""
    best = None
    for t in earlier:
        delta = start - t
        off = abs(delta - timedelta(days=1))
        if off <= tolerance and (best is None or off < best[0]):
            best = (off, delta)
    return None if best is None else best[1].total_seconds() / 3600


def same_time_days(
    start: datetime,
    earlier: Iterable[datetime],
    tz: Any,
    tolerance: timedelta = RECURRENCE_TOLERANCE,
    days: int = RECURRENCE_DAYS,
) -> int | None:
    """Days back (2..`days`) to an earlier onset at the same local time of day (within tolerance), else None."""
    local = start.astimezone(tz)
    best = None
    for t in earlier:
        lt = t.astimezone(tz)
        back = (local.date() - lt.date()).days
        if not 2 <= back <= days:
            continue
        off = abs((local.hour * 60 + local.minute) - (lt.hour * 60 + lt.minute))
        off = min(off, 1440 - off)
        if off <= tolerance.total_seconds() / 60 and (best is None or back < best):
            best = back
    return best


def schedule_episodes(
    start: datetime,
    earlier: Iterable[datetime],
    tz: Any,
    tolerance: timedelta = RECURRENCE_TOLERANCE,
    days: int = RECURRENCE_DAYS,
) -> int:
    """How many earlier onsets form a chain with `start` at the same local time of day (within `tolerance`),
    each 1..`days` local days before the next: 2 or more is a schedule."""

    def minute(t: datetime) -> int:
        lt = t.astimezone(tz)
        return lt.hour * 60 + lt.minute

    m0 = minute(start)
    same = sorted(
        (
            t
            for t in earlier
            if t < start and min(abs(minute(t) - m0), 1440 - abs(minute(t) - m0)) <= tolerance.total_seconds() / 60
        ),
        reverse=True,
    )
    chain, last = 0, start.astimezone(tz).date()
    for t in same:
        day = t.astimezone(tz).date()
        gap = (last - day).days
        if gap == 0:
            continue
        if gap > days:
            break
        chain, last = chain + 1, day
    return chain


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


# --- evidence ---------------------------------------------------------------------------------


class _Items:
    """Collects evidence items as (name, x, detail, numbers, against-cause)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, float, str, dict[str, Any], Cause | None]] = []

    def add(
        self, name: str, x: float, detail: str, numbers: dict[str, Any] | None = None, against: Cause | None = None
    ) -> None:
        self.items.append((name, max(0.0, min(1.0, x)), detail, numbers or {}, against))


def _step(watch: Watch, signal: str) -> timedelta:
    cfg = watch.signals.get(signal)
    return cfg.step if cfg else timedelta(minutes=5)


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


def gather_evidence(  # noqa: C901 (to be split up: issue 19)
    watch: Watch, incident: Incident, anomalies: Sequence[Anomaly] = (), context: AttributionContext | None = None
) -> list[tuple[str, float, str, dict[str, Any], Cause | None]]:
    """Named pieces of evidence about an incident: (name, x in [0, 1], detail,
    numbers, cause it points to if against).
    """
    ctx = context or AttributionContext()
    ev = _Items()
    members = [a for a in anomalies if a.id in set(incident.anomaly_ids)] or list(anomalies)
    conn = [a for a in members if a.family is Family.connectivity]
    is_conn = incident.family is Family.connectivity
    start = incident.start

    # onset on the local hour or half hour, at the resolution of the finest signal that saw it
    near = [a for a in members if a.start - start <= max(_step(watch, a.signal), timedelta(minutes=5))]
    resolution = min((_step(watch, a.signal) for a in near), default=timedelta(minutes=5))
    local = start.astimezone(watch.tz)
    numbers = {"local_time": f"{local:%H:%M}", "resolution_min": round(resolution.total_seconds() / 60, 1)}
    if resolution >= timedelta(minutes=30):
        ev.add(
            "onset_on_the_hour",
            0.0,
            f"onset {local:%H:%M} local, but the signals that saw it are "
            f"{resolution.total_seconds() / 60:.0f}-minute bins: onset minute not informative",
            numbers,
        )
    else:
        where, minutes = onset_alignment(local, resolution)
        numbers["minutes_past_hour"] = round(minutes, 1)
        if where == "hour":
            ev.add(
                "onset_on_the_hour",
                1.0,
                f"onset at {local:%H:%M} local, on the hour (shutdowns start on the hour in 71% of cases, other "
                "outages 23%)",
                numbers,
            )
        elif where == "half_hour":
            ev.add("onset_on_the_half_hour", 1.0, f"onset at {local:%H:%M} local, on the half hour", numbers)
        else:
            ev.add("onset_on_the_hour", 0.0, f"onset at {local:%H:%M} local, not on the hour or half hour", numbers)

    if is_conn:
        # scope
        share = incident.scope.share
        if incident.kind is IncidentKind.nationwide_outage:
            ev.add("nationwide_scope", 1.0, f"nationwide: {share:.0%} of the country affected", {"share": share})
        elif incident.kind is IncidentKind.network_outage and len(incident.scope.asns) == 1:
            ev.add(
                "single_network",
                1.0,
                f"a single network affected ({', '.join(incident.scope.providers)})",
                {"providers": 1, "share": share},
                Cause.technical,
            )
        # several independent providers dropping within minutes of each other
        firsts: dict[int, datetime] = {}
        for a in conn:
            if a.entity.asn is not None and a.level == "critical":
                firsts[a.entity.asn] = min(firsts.get(a.entity.asn, a.start), a.start)
        if len(firsts) >= 2:
            spread = max(firsts.values()) - min(firsts.values())
            together = spread <= TOGETHER_WINDOW
            ev.add(
                "providers_together",
                1.0 if together else 0.0,
                f"{len(firsts)} providers dropped within {spread.total_seconds() / 60:.0f} min of each other"
                + ("" if together else " (staggered, not one switch)"),
                {"providers": len(firsts), "onset_spread_min": round(spread.total_seconds() / 60, 1)},
            )
        # IODA's own records of the outage (alerts, events) around the onset, for the country or the incident's scope
        ioda_signals = {s for s, c in watch.signals.items() if c.family is Family.connectivity and c.source == "ioda"}
        records = [
            e
            for e in ctx.events
            if e.type == "ioda_outage" and _in_scope(e.entity, incident) and abs(e.start - start) <= SAME_TIME_WINDOW
        ]
        by_ioda = sorted({e.signal for e in records if e.signal} & ioda_signals)
        if records:
            ev.add(
                "ioda_record",
                1.0,
                f"IODA's own detector recorded it: {len(records)} alert(s)/event(s) from "
                f"{min(e.start for e in records):%H:%MZ} ({', '.join(sorted({e.signal or '?' for e in records}))}; "
                f"{', '.join(sorted({e.entity or incident.country for e in records})[:5])})",
                {"records": len(records), "signals": sorted({e.signal or "?" for e in records})},
            )
        # all signals agreeing (a signal IODA's own records show falling counts, even where the watch's data missed it)
        observed = ctx.observed_signals
        configured = sorted(s for s in ioda_signals if observed is None or s in observed or s in by_ioda)
        seen = sorted(({a.signal for a in conn} | set(by_ioda)) & set(configured))
        if configured:
            agree = len(seen) == len(configured) and len(seen) >= 2
            ev.add(
                "all_signals_agree",
                1.0 if agree else 0.0,
                f"{len(seen)} of {len(configured)} signals agree ({', '.join(seen) or '-'})"
                + (f"; IODA's records show {', '.join(by_ioda)}" if by_ioda else ""),
                {"signals": len(seen), "of": len(configured), "seen": seen, "ioda_records": by_ioda},
            )
        # BGP withdrawal versus data-plane-only loss
        if "bgp" in watch.signals and (observed is None or "bgp" in observed) and conn:
            bgp = [a for a in conn if a.signal == "bgp"]
            if bgp:
                ev.add(
                    "bgp_withdrawal",
                    1.0,
                    f"routes withdrawn: BGP-visible /24s fell {max(a.depth for a in bgp):.0%}",
                    {"bgp_depth": round(max(a.depth for a in bgp), 3)},
                )
            else:
                ev.add(
                    "data_plane_only",
                    1.0,
                    "routes stayed announced while hosts stopped answering (data-plane-only loss)",
                    {"signals": sorted({a.signal for a in conn})},
                    Cause.power_outage,
                )
        # gradual onset or recovery: a clean cut stays near its peak depth the whole time
        drops = [a for a in conn if a.direction.value == "drop" and a.points >= 4 and a.depth > 0.2]
        if drops:
            ratios = []
            for a in drops:
                step_min = _step(watch, a.signal).total_seconds() / 60
                ratios.append(a.severity / (a.points * step_min * 100 * a.depth))
            fullness = min(1.0, sum(ratios) / len(ratios))
            x = (0.8 - fullness) / 0.3
            ev.add(
                "gradual_change",
                x,
                f"average depth {fullness:.0%} of the peak "
                f"({'gradual onset or recovery' if x > 0 else 'abrupt on and off'})",
                {"mean_to_peak": round(fullness, 3)},
                Cause.technical,
            )
        # a single upstream
        affected = [watch.provider(a) for a in incident.scope.asns]
        ups = [set(p.upstreams) for p in affected if p is not None and p.upstreams]
        if ups and len(ups) == len(affected):
            common = set.intersection(*ups)
            unaffected_on_it = [
                p for p in watch.providers if p.asn not in incident.scope.asns and common & set(p.upstreams)
            ]
            if len(common) == 1 and not unaffected_on_it and len(affected) < len(watch.providers):
                up = next(iter(common))
                ev.add(
                    "single_upstream",
                    1.0,
                    f"every affected network buys transit from AS{up}, and no unaffected one does",
                    {"upstream": up, "networks": len(affected)},
                    Cause.technical,
                )
    else:
        # connectivity normal while named services (or tools, or speed) fail
        n_prov = len(incident.scope.asns)
        what = {
            Family.service: "services fail",
            Family.circumvention: "circumvention tools fail",
            Family.performance: "services slowed down",
        }.get(incident.family, "services fail")
        label = network_label(watch, incident.scope.asns)
        observed = ctx.observed_signals
        conn_signals = [
            s
            for s, c in watch.signals.items()
            if c.family is Family.connectivity and (observed is None or s in observed)
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
            ev.add(
                "service_specific",
                0.0,
                f"could not judge whether connectivity stayed normal while {what}: {missing}",
                {"services": incident.scope.services, "providers": n_prov, "not_judged": missing},
            )
        else:
            ev.add(
                "service_specific",
                1.0 if n_prov >= 2 else 0.6,
                f"connectivity normal while {what} ({', '.join(incident.scope.services) or '-'}) on {n_prov} "
                "provider(s)" + (f", {label}" if label else ""),
                {"services": incident.scope.services, "providers": n_prov, "networks": label or None},
            )

    # interference consistent with censorship methods (web probes' outage types)
    methods: dict[str, set[int]] = {}
    for a in members:
        for t in _outage_types(a) & CENSORSHIP_OUTAGES:
            methods.setdefault(t, set()).add(a.entity.asn or 0)
    if methods:
        nets = set().union(*methods.values())
        ev.add(
            "censorship_method",
            1.0 if len(nets) >= 2 else 0.7,
            f"interference consistent with censorship: {', '.join(sorted(methods))} on {len(nets)} network(s)",
            {"methods": sorted(methods), "networks": len(nets)},
        )

    # recurrence exactly one day later
    earlier = [
        i.start
        for i in ctx.past
        if i.id != incident.id and i.country == incident.country and i.start < start and (i.family is incident.family)
    ]
    # a recurring incident's own past
    episodes = [t for t in earlier_onsets(incident) if t < start - timedelta(hours=1)]
    earlier += episodes
    hours = recurrence_days(start, earlier)
    if hours is not None:
        ev.add(
            "recurrence_one_day",
            1.0,
            f"a {incident.family.value} incident started {hours:.1f} h earlier, at the same time the day before",
            {"hours_earlier": round(hours, 2)},
        )
    else:
        back = same_time_days(start, earlier, watch.tz)
        if back is not None:
            ev.add(
                "recurrence_same_time",
                1.0,
                f"a {incident.family.value} incident started at the same local time {back} days earlier (a schedule)",
                {"days_earlier": back},
            )

    # a schedule: two or more earlier episodes of this scope at the same local time within the last days
    sched = schedule_episodes(start, earlier if not episodes else episodes, watch.tz)
    if sched >= 2:
        ev.add(
            "recurring_schedule",
            1.0,
            f"episode {sched + 1} at the same local time "
            f"({start.astimezone(watch.tz):%H:%M}) within {RECURRENCE_DAYS} days of the one before: a schedule, "
            "not a failure",
            {"earlier_episodes": sched},
        )

    # proximity to the election's milestones and to political events the coordinator recorded
    nearest = None
    for name, when in watch.milestone_times().items():
        delta = abs(start - when)
        if nearest is None or delta < nearest[1]:
            nearest = (name, delta, when)
    if nearest and nearest[1] <= MILESTONE_WINDOW:
        minutes = nearest[1].total_seconds() / 60
        ev.add(
            "election_milestone",
            1 - nearest[1] / MILESTONE_WINDOW / 2,
            f"onset {minutes:.0f} min from {nearest[0]} ({nearest[2].astimezone(watch.tz):%Y-%m-%d %H:%M} local)",
            {"milestone": nearest[0], "minutes": round(minutes, 1)},
        )
    events = watch_events(watch) + list(ctx.events)
    political = [
        (abs(start - e.start), e)
        for e in events
        if e.type in POLITICAL_EVENTS and abs(start - e.start) <= MILESTONE_WINDOW
    ]
    if political:
        delta, e = min(political, key=lambda t: t[0])
        ev.add(
            "political_event",
            1 - delta / MILESTONE_WINDOW / 2,
            f"onset {delta.total_seconds() / 60:.0f} min from {e.type} '{e.name}' ({e.source})",
            {"event": e.name, "minutes": round(delta.total_seconds() / 60, 1)},
        )

    # against: power, weather or cable events recorded at the time
    for e in events:
        cause = EVENT_CAUSE.get(e.type)
        name = "power_or_weather_event" if cause else "cable_event" if e.type == "cable_cut" else None
        if name is None:
            continue
        e_end = e.end or e.start + MILESTONE_WINDOW
        if not (e.start - MILESTONE_WINDOW <= start <= e_end):
            continue
        if e.regions and incident.scope.regions and not set(e.regions) & set(incident.scope.regions):
            continue
        ev.add(
            name,
            1.0,
            f"{e.type.replace('_', ' ')} recorded by {e.source}: '{e.name}' from {iso(e.start)}",
            {"event": e.name, "type": e.type, "minutes_before_onset": round((start - e.start).total_seconds() / 60, 1)},
            cause or Cause.cable_cut,
        )

    # against: other countries affected at the same time (a shared cable or upstream)
    others = {
        i.country
        for i in ctx.others
        if i.country != incident.country
        and i.kind is IncidentKind.nationwide_outage
        and abs(i.start - start) <= SAME_TIME_WINDOW
    }
    others |= {
        e.country or e.name for e in events if e.type == "neighbour_outage" and abs(e.start - start) <= SAME_TIME_WINDOW
    }
    if others:
        ev.add(
            "other_countries_same_time",
            1.0,
            f"other countries affected at the same time: {', '.join(sorted(others))}",
            {"countries": sorted(others)},
            Cause.cable_cut,
        )

    # Cloudflare Radar's cause label
    for e in events:
        if e.type == "radar_outage" and e.cause and abs(e.start - start) <= SAME_TIME_WINDOW:
            label = RADAR_CAUSES.get(e.cause.upper().replace(" ", "_"), Cause.unknown)
            if label is Cause.unknown:
                continue
            ev.add(
                "radar_label",
                1.0,
                f"Cloudflare Radar labels it {e.cause}",
                {"label": e.cause},
                None if label is Cause.government_directed else label,
            )
            break
    return ev.items


def weights_for(watch: Watch) -> dict[str, float]:
    return {**DEFAULT_WEIGHTS, **watch.attribution.weights}


def score(
    items: Sequence[tuple[str, float, str, dict[str, Any], Cause | None]],
    weights: dict[str, float],
    min_confidence: float = 0.5,
) -> tuple[Cause, float, list[Evidence]]:
    """Cause, confidence and the evidence list (strongest first, then the score) from gathered items."""
    logit = weights.get("bias", 0.0)
    evidence = []
    against: dict[Cause, float] = {}
    for name, x, detail, numbers, cause_against in items:
        w = weights.get(name, 0.0)
        if name == "radar_label" and cause_against is not None:
            w = -abs(w)
        contribution = w * x
        logit += contribution
        if contribution < 0:
            target = cause_against or Cause.technical
            against[target] = against.get(target, 0.0) - contribution
        supports = (
            Cause.government_directed
            if contribution > 0
            else (cause_against or Cause.technical)
            if contribution < 0
            else Cause.unknown
        )
        evidence.append(
            Evidence(
                name=name,
                supports=supports,
                weight=round(contribution, 3),
                detail=detail,
                numbers={**numbers, "x": round(x, 3), "w": w},
            )
        )
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
    items = gather_evidence(watch, inc, anomalies, context)
    cause, confidence, inc.evidence = score(items, weights_for(watch), watch.attribution.min_confidence)
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
