"""The statement's sentences about one incident, in an observatory's register: what, where, when, how deep, how
it was measured and its likely cause. Plain text (outside text cleaned of control characters); the writers escape it."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

from pollwatch.models import Anomaly, Cause, Direction, Incident, IncidentKind, Observation
from pollwatch.playbook import Watch
from pollwatch.words import (
    CAUSE_WORDS,
    KIND_TITLES,
    OUTAGE_KINDS,
    RISE_KINDS,
    country_name,
    fmt_duration,
    fmt_number,
    reach_words,
    service_labels,
)

# what each signal measures, in a reader's words (the playbook's signal names are free text: others fall back to the
# name)
SIGNAL_WORDS = {
    "bgp": "the country's address blocks visible in global routing (BGP)",
    "active_probing": "address blocks answering active probes",
    "telescope": "unsolicited background traffic from the country reaching a network telescope",
    "connectivity_index": "a connectivity index of IP responsiveness",
    "service_failure_rate": "the share of network measurement tests of a service that failed",
    "rtt_ms": "how long pollwatch's web probes took to fetch a service",
    "probe_success_rate": "the share of pollwatch's web probes of a service that succeeded",
    "diffscan": "the share of sampled address blocks answering pollwatch's scans",
}


SOURCE_WORDS = {
    "ioda": "IODA",
    "ooni": "OONI",
    "webprobe": "pollwatch's web probes",
    "diffscan": "pollwatch's scans",
    "radar": "Cloudflare Radar",
    "ripestat": "RIPEstat",
    "monash": "the Monash IP Observatory",
}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def confidence_word(p: float) -> str:
    """How sure a statement may sound: `very likely` from 80 %, `likely` from 60 %, `possibly` from 40 %."""
    sure = ((0.8, "very likely"), (0.6, "likely"), (0.4, "possibly"))
    return next((word for floor, word in sure if p >= floor), "unclear, at best possibly")


def clean(s: str) -> str:
    """Outside text without control or bidirectional-override characters."""
    return _CONTROL.sub("", str(s))


def join_names(items: list[str], limit: int = 6) -> str:
    items = [i for i in items if i]
    if len(items) > limit:
        items = items[:limit] + [f"{len(items) - limit} more"]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def when_text(watch: Watch, dt: datetime) -> str:
    """`9 June 2019, 05:00 UTC (11:00 ALMT)`; the local date is named when it differs from UTC's."""
    u = dt.astimezone(timezone.utc)
    local = dt.astimezone(watch.tz)
    local_txt = f"{local:%H:%M}" if local.date() == u.date() else f"{local:%H:%M} on {local.day} {local:%B}"
    return f"{u.day} {u:%B %Y}, {u:%H:%M} UTC ({local_txt} {watch.local_label(dt)})"


def _election_day_words(watch: Watch, dt: datetime) -> str:
    if watch.election_date is None:
        return ""
    delta = (dt.astimezone(watch.tz).date() - watch.election_date).days
    if delta == 0:
        return "election day"
    return f"{abs(delta)} day{'s' if abs(delta) != 1 else ''} {'after' if delta > 0 else 'before'} election day"


def subject(watch: Watch, inc: Incident) -> str:
    """What was affected, as a headline's subject: `Internet access nationwide`,
    `Periscope`, `circumvention tools (Tor, ...)`.
    """
    if inc.kind is IncidentKind.nationwide_outage:
        return "Internet access nationwide"
    if inc.kind is IncidentKind.regional_outage:
        return f"Internet access in {join_names([watch.region_name(r) for r in inc.scope.regions]) or 'some regions'}"
    if inc.kind is IncidentKind.network_outage:
        return f"Internet access on {join_names([watch.provider_name(a) for a in inc.scope.asns]) or 'one network'}"
    if inc.kind is IncidentKind.circumvention_block:
        return (
            f"circumvention tools ({join_names(service_labels(watch, inc))})"
            if inc.scope.services
            else "circumvention tools"
        )
    return join_names(service_labels(watch, inc)) or "online services"


def _deepest(a: Anomaly, observations: list[Observation]) -> float | None:
    """The anomaly's most extreme stored value over its span (lowest for a drop, highest for a rise)."""
    key = a.entity.key
    vals = [
        o.value
        for o in observations
        if o.value is not None
        and o.signal == a.signal
        and o.source == a.source
        and o.entity_key == key
        and a.start <= o.time <= (a.end or o.time)
    ]
    if not vals:
        return None
    return min(vals) if a.direction is Direction.drop else max(vals)


def depth_items(watch: Watch, inc: Incident, anomalies: list[Anomaly], observations: list[Observation]) -> list[str]:
    """Per signal the deepest anomaly, in words: its most extreme stored value against the expected level."""
    best: dict[tuple[str, str], Anomaly] = {}  # per signal and service: the country's series first, else the deepest
    for a in anomalies:
        k = (a.signal, a.entity.service or "")
        cur = best.get(k)
        whole = lambda x: x.entity.asn is None and x.entity.region is None  # noqa: E731
        if cur is None or (whole(a), a.depth) > (whole(cur), cur.depth):
            best[k] = a
    out = []
    for (sig, _), a in sorted(best.items(), key=lambda kv: (-kv[1].depth, kv[0])):
        where = _entity_words(watch, a)
        what = SIGNAL_WORDS.get(sig, sig)
        seen = _deepest(a, observations)
        cfg = watch.signals.get(sig)
        rate = cfg is not None and cfg.direction is Direction.rise and cfg.mode == "delta" and (a.expected or 0) <= 1
        if seen is None or a.expected is None:
            word = "below" if a.direction is Direction.drop else "above"
            out.append(f"{what} ({where}): {a.depth:.0%} {word} the expected level at its deepest")
        elif rate:
            out.append(f"{what} ({where}): up to {seen:.0%}, against {a.expected:.0%} usually")
        elif a.direction is Direction.drop:
            lower = 1 - seen / a.expected if a.expected else a.depth
            figures = f"down to {fmt_number(seen)} against {fmt_number(a.expected)} expected, {lower:.0%} lower"
            out.append(f"{what} ({where}): {figures}")
        else:
            out.append(f"{what} ({where}): up to {fmt_number(seen)} against {fmt_number(a.expected)} expected")
    if not out:
        out.append(
            f"{inc.depth:.0%} {'above' if inc.kind in RISE_KINDS else 'below'} the expected level at its deepest"
        )
    return out


def _entity_words(watch: Watch, a: Anomaly) -> str:
    e = a.entity
    parts = []
    if e.service:
        parts.append(watch.service_label(e.service))
    if e.asn is not None:
        parts.append(f"on {watch.provider_name(e.asn)} (AS{e.asn})")
    elif e.region is not None:
        parts.append(f"in {watch.region_name(e.region)}")
    else:
        parts.append(f"{'across' if e.service else 'for'} {country_name(e.country)}")
    return " ".join(parts)


def what_text(watch: Watch, inc: Incident, anomalies: list[Anomaly]) -> str:
    country = country_name(inc.country)
    share = inc.scope.share
    if inc.kind in OUTAGE_KINDS:
        title = KIND_TITLES[inc.kind].lower()
        txt = f"pollwatch measured a {title} in {country}"
        if share:
            txt += f", reaching {reach_words(share)}: {share:.0%} of the country measured was affected"
        return txt + f", with connectivity down {inc.depth:.0%} at its deepest."
    networks = sorted({a.entity.asn for a in anomalies if a.entity.asn is not None}) or inc.scope.asns
    n_all = len(watch.providers)
    on = f" on {len(networks)} of the {n_all} monitored providers" if networks and n_all else ""
    if inc.kind is IncidentKind.throttling:
        return (
            f"pollwatch measured {join_names(service_labels(watch, inc)) or 'services'} slowed down in {country}{on}."
        )
    what = subject(watch, inc)
    return (
        f"Tests of {what} failed{on} in {country} while the networks themselves stayed connected"
        f" ({reach_words(share)} by the measured share, {share:.0%} of the country's address space on those networks)."
    )


def timeline_text(watch: Watch, inc: Incident, as_of: datetime | None) -> str:
    day = _election_day_words(watch, inc.start)
    txt = f"It started on {when_text(watch, inc.start)}" + (f", {day}" if day else "") + "."
    if inc.end is not None and inc.status == "resolved":
        txt += f" It ended on {when_text(watch, inc.end)}, after {fmt_duration(inc.end - inc.start)}."
    else:
        last = max(as_of or inc.updated_at, inc.updated_at)
        txt += (
            f" It was still ongoing at the last measurement, {when_text(watch, last)}, "
            f"{fmt_duration(last - inc.start)} after it began."
        )
    first = inc.first_start
    lag = inc.detected_at - first
    which = "its first episode" if first != inc.start else "it"
    txt += f" pollwatch detected {which} on {when_text(watch, inc.detected_at)}, {fmt_duration(lag)} after its onset."
    return txt


def _day(d: date) -> str:
    return f"{d.day} {d:%B}"


def recurrence_text(watch: Watch, inc: Incident, limit: int = 8) -> str | None:
    """A recurring incident's episodes in words: how often, when usually, each day's window (the latest `limit`),
    the expected days without a cut; a lone pair not yet confirmed says so. None for a one-off incident."""
    pat = inc.pattern
    if pat is None or not inc.episodes:
        return None
    first = inc.episodes[0]
    if pat.tentative:
        return (
            f"It began at the same local time as a cut on {when_text(watch, first.start)}; whether both belong to one "
            "schedule is decided when it ends (by how closely its window matches that one's)."
        )
    how = "every day" if pat.period == "daily" else pat.period
    eps = inc.episodes[-limit:]
    days = [f"{_day(e.start.astimezone(watch.tz).date())} {e.local_start}-{e.local_end or 'ongoing'}" for e in eps]
    earlier = pat.episodes - len(eps)
    txt = (
        f"It recurred: {pat.episodes} episodes, {how}, usually {pat.local_start}-{pat.local_end or '?'} local time "
        f"({pat.timezone}), the first on {when_text(watch, first.start)}. "
        + (f"The latest {len(eps)} (local dates and times): " if earlier > 0 else "Each (local dates and times): ")
        + join_names(days, limit=limit)
        + "."
    )
    if pat.missed_dates:
        txt += f" Expected but no cut came on {join_names([_day(date.fromisoformat(d)) for d in pat.missed_dates])}."
    return txt + " A schedule at the same local time is itself evidence of a deliberate shutdown."


def how_measured_text(watch: Watch, inc: Incident, anomalies: list[Anomaly]) -> str:
    sigs = inc.scope.signals or sorted({a.signal for a in anomalies})
    parts = []
    for sig in sigs:
        cfg = watch.signals.get(sig)
        src = SOURCE_WORDS.get(cfg.source, cfg.source) if cfg else None
        parts.append(f"{SIGNAL_WORDS.get(sig, sig)}" + (f" (from {src})" if src else ""))
    series = sorted({a.entity.key for a in anomalies})
    networks = sorted({a.entity.asn for a in anomalies if a.entity.asn is not None})
    regions = sorted({a.entity.region for a in anomalies if a.entity.region is not None})
    country = any(a.entity.level == "country" or (a.entity.asn is None and a.entity.region is None) for a in anomalies)
    where = []
    if country:
        where.append("the country as a whole")
    if networks:
        where.append(
            f"{len(networks)} network{'s' if len(networks) != 1 else ''} "
            f"({join_names([watch.provider_name(a) for a in networks])})"
        )
    if regions:
        where.append(
            f"{len(regions)} region{'s' if len(regions) != 1 else ''} "
            f"({join_names([watch.region_name(r) for r in regions])})"
        )
    agree = "agreed" if len(sigs) > 1 else "showed it"
    txt = f"{'These signals' if len(sigs) > 1 else 'One signal'} {agree}: {join_names(parts)}."
    if where:
        txt += f" They fell outside their usual range in {len(series)} series, for {join_names(where)}."
    return txt


def cause_paragraph(watch: Watch, inc: Incident) -> tuple[str, list[str]]:
    words = CAUSE_WORDS[inc.cause]
    if inc.override:
        by, why = clean(inc.override.get("by", "a responder")), clean(inc.override.get("why", ""))
        prev = inc.override.get("previous") or {}
        verb = "confirmed" if prev.get("cause") == inc.cause.value else "set"
        txt = f"A responder ({by}) {verb} the cause: {words}" + (f", because: “{why}”" if why else "") + "."
        if prev.get("cause") and prev.get("cause") != inc.cause.value:
            txt += (
                f" pollwatch's own reading had been {CAUSE_WORDS.get(Cause(prev['cause']), prev['cause'])}"
                f" (confidence {float(prev.get('confidence') or 0):.0%})."
            )
    elif inc.cause is Cause.unknown:
        txt = (
            "The cause could not be determined from the measurements (confidence in any one cause below "
            f"{watch.attribution.min_confidence:.0%})."
        )
    else:
        txt = f"The cause is {confidence_word(inc.cause_confidence)} a {words} (confidence {inc.cause_confidence:.0%})."
    items_ = [e for e in inc.evidence if e.name != "score"]  # the scorer's sum, said above as the confidence
    for_ = [e for e in items_ if e.supports is inc.cause and e.weight > 0]
    against = [e for e in items_ if e.weight < 0 or (e.supports is not inc.cause and e.weight > 0)]
    items = [f"for: {clean(e.detail)}" for e in sorted(for_, key=lambda e: -e.weight)[:5]]
    items += [f"against: {clean(e.detail)}" for e in sorted(against, key=lambda e: -abs(e.weight))[:3]]
    return txt, items
