"""The public statement: a draft in an observatory's register, written from the store alone.

`collect()` reads a watch's incidents (with any responder's override), the anomalies behind them
and the observations for their charts; `statement()` turns them into a list of blocks (headline,
what, where, when, services, depth, how measured, likely cause, charts, methodology); the
renderers write Markdown or HTML (all outside text escaped). Every sentence is made from those
records: a number that is not in the store is not in the draft, an uncertain point carries its
confidence, and a responder's cause wins over the scorer's. `incident_statement()` gives the
Markdown draft of one incident, for Slack (the "Draft statement" button, the thread on resolve).
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

from sqlalchemy import func, select
from sqlmodel import Session

from pollwatch import __version__, store
from pollwatch.charts import incident_chart_window
from pollwatch.classify import network_label
from pollwatch.models import Anomaly, Cause, Direction, Incident, IncidentKind, Observation, iso
from pollwatch.playbook import Watch
from pollwatch.timeutil import format_duration
from pollwatch.words import CAUSE_WORDS, KIND_TITLES, country_name, fmt_duration, reach_words

Format = Literal["md", "html"]

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
_RISE = (IncidentKind.service_block, IncidentKind.circumvention_block, IncidentKind.throttling)
_OUTAGE = (IncidentKind.nationwide_outage, IncidentKind.regional_outage, IncidentKind.network_outage)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def confidence_word(p: float) -> str:
    """How sure a statement may sound: `very likely` from 80 %, `likely` from 60 %, `possibly` from 40 %."""
    if p >= 0.8:
        return "very likely"
    if p >= 0.6:
        return "likely"
    if p >= 0.4:
        return "possibly"
    return "unclear, at best possibly"


# --- gathering ---------------------------------------------------------------------------------


@dataclass
class BriefData:
    watch: Watch
    incidents: list[Incident]
    anomalies: dict[str, Anomaly]
    observations: dict[str, list[Observation]] = field(default_factory=dict)  # per incident id, for its chart
    as_of: datetime | None = None  # the newest observation of the country in the store: "ongoing" is as of then
    generated_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


def collect(
    session: Session,
    watch: Watch,
    *,
    incident: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> BriefData:
    """The watch's incidents (one, by id or id prefix, or those overlapping [since, until)) and what is behind them."""
    if incident is not None:
        from pollwatch.override import find_incident

        inc = find_incident(session, incident)
        if inc.watch != watch.name:
            raise ValueError(f"incident {inc.id} belongs to watch {inc.watch!r}, not {watch.name!r}")
        incidents = [inc]
    else:
        incidents = store.list_incidents(session, watch=watch.name, since=since, until=until)
    incidents.sort(key=lambda i: (i.start, i.id))
    wanted = {aid for i in incidents for aid in i.anomaly_ids}
    anomalies = {a.id: a for a in store.list_anomalies(session, watch.name) if a.id in wanted} if wanted else {}
    t = store.ObservationRow.__table__.c
    q = select(func.max(t.time)).where(t.country == watch.country)
    if until is not None:
        q = q.where(t.time < until)
    as_of = session.execute(q).scalar()
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=timezone.utc)
    observations: dict[str, list[Observation]] = {}  # the depth's figures and the charts come from these
    for inc in incidents:
        shown = (
            inc
            if inc.end is not None or as_of is None
            else inc.model_copy(update={"updated_at": max(as_of, inc.updated_at)})
        )
        lo, hi = incident_chart_window(shown)
        observations[inc.id] = store.query_observations(session, country=inc.country, since=lo, until=hi)
    return BriefData(watch=watch, incidents=incidents, anomalies=anomalies, observations=observations, as_of=as_of)


# --- the statement as blocks ---------------------------------------------------------------------


@dataclass
class Block:
    kind: Literal["h1", "h2", "h3", "p", "ul", "chart", "meta"]
    text: str = ""
    items: list[str] = field(default_factory=list)
    incident_id: str | None = None


def _clean(s: str) -> str:
    """Outside text without control or bidirectional-override characters."""
    return _CONTROL.sub("", str(s))


def _names(items: list[str], limit: int = 6) -> str:
    items = [i for i in items if i]
    if len(items) > limit:
        items = items[:limit] + [f"{len(items) - limit} more"]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _day(watch: Watch, dt: datetime) -> str:
    local = dt.astimezone(watch.tz)
    return f"{local.day} {local:%B %Y}"


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


def _services(watch: Watch, inc: Incident) -> list[str]:
    return [watch.service_label(s) for s in inc.scope.services]


def _providers(watch: Watch, inc: Incident) -> list[str]:
    if inc.scope.asns:
        return [f"{watch.provider_name(a)} (AS{a})" for a in inc.scope.asns]
    return list(inc.scope.providers)


def _regions(watch: Watch, inc: Incident) -> list[str]:
    names = {r.code: r.name for r in watch.regions}
    return [f"{names[r]} ({r})" if r in names else r for r in inc.scope.regions]


def subject(watch: Watch, inc: Incident) -> str:
    """What was affected, as a headline's subject: `Internet access nationwide`,
    `Periscope`, `circumvention tools (Tor, ...)`.
    """
    if inc.kind is IncidentKind.nationwide_outage:
        return "Internet access nationwide"
    if inc.kind is IncidentKind.regional_outage:
        return f"Internet access in {_names([watch.region_name(r) for r in inc.scope.regions]) or 'some regions'}"
    if inc.kind is IncidentKind.network_outage:
        return f"Internet access on {_names([watch.provider_name(a) for a in inc.scope.asns]) or 'one network'}"
    if inc.kind is IncidentKind.circumvention_block:
        return f"circumvention tools ({_names(_services(watch, inc))})" if inc.scope.services else "circumvention tools"
    return _names(_services(watch, inc)) or "online services"


def headline(watch: Watch, incidents: list[Incident]) -> str:
    """One line naming what was restricted, where and when, from the incidents' kinds, services and dates."""
    country = country_name(watch.country or "")
    if not incidents:
        return f"No internet disruption recorded in {country}"
    outages = [i for i in incidents if i.kind in _OUTAGE]
    others = [i for i in incidents if i.kind not in _OUTAGE]
    parts = []
    if outages:
        worst = min(outages, key=lambda i: list(IncidentKind).index(i.kind))
        parts.append(
            {
                IncidentKind.nationwide_outage: "Internet cut nationwide",
                IncidentKind.regional_outage: "Internet cut in parts of the country",
                IncidentKind.network_outage: "Internet cut on some networks",
            }[worst.kind]
        )
    names: list[str] = []
    for i in others:
        for n in (["circumvention tools"] if i.kind is IncidentKind.circumvention_block else _services(watch, i)) or [
            "online services"
        ]:
            if n not in names:
                names.append(n)
    if names:
        verb = "slowed" if all(i.kind is IncidentKind.throttling for i in others) else "restricted"
        parts.append(f"{_names(names, limit=5)} {verb}")
    what = " and ".join(parts) if len(parts) < 2 else f"{parts[0]}; {parts[1]}"
    what = what[0].upper() + what[1:]
    days = sorted({i.start.astimezone(watch.tz).date() for i in incidents})
    if watch.election_date is not None and days == [watch.election_date]:
        when = "on election day"
    elif len(days) == 1:
        when = f"on {days[0].day} {days[0]:%B %Y}"
    else:
        first = (
            f"{days[0].day}"
            if (days[0].year, days[0].month) == (days[-1].year, days[-1].month)
            else f"{days[0].day} {days[0]:%B}"
        )
        span = f"{first} to {days[-1].day} {days[-1]:%B %Y}"
        when = f"between {span.replace(' to ', ' and ', 1)}"
        if watch.election_date is not None and days[0] <= watch.election_date <= days[-1]:
            when = f"around election day ({span})"
    return f"{what} in {country} {when}"


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


def _depth_items(watch: Watch, inc: Incident, anomalies: list[Anomaly], observations: list[Observation]) -> list[str]:
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
            out.append(f"{what} ({where}): down to {_num(seen)} against {_num(a.expected)} expected, {lower:.0%} lower")
        else:
            out.append(f"{what} ({where}): up to {_num(seen)} against {_num(a.expected)} expected")
    if not out:
        out.append(f"{inc.depth:.0%} {'above' if inc.kind in _RISE else 'below'} the expected level at its deepest")
    return out


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 10 else f"{x:.2f}"


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


def _what(watch: Watch, inc: Incident, anomalies: list[Anomaly]) -> str:
    country = country_name(inc.country)
    share = inc.scope.share
    if inc.kind in _OUTAGE:
        title = KIND_TITLES[inc.kind].lower()
        txt = f"pollwatch measured a {title} in {country}"
        if share:
            txt += f", reaching {reach_words(share)}: {share:.0%} of the country measured was affected"
        return txt + f", with connectivity down {inc.depth:.0%} at its deepest."
    networks = sorted({a.entity.asn for a in anomalies if a.entity.asn is not None}) or inc.scope.asns
    n_all = len(watch.providers)
    on = f" on {len(networks)} of the {n_all} monitored providers" if networks and n_all else ""
    if inc.kind is IncidentKind.throttling:
        return f"pollwatch measured {_names(_services(watch, inc)) or 'services'} slowed down in {country}{on}."
    what = subject(watch, inc)
    return (
        f"Tests of {what} failed{on} in {country} while the networks themselves stayed connected"
        f" ({reach_words(share)} by the measured share, {share:.0%} of the country's address space on those networks)."
    )


def _when(watch: Watch, inc: Incident, as_of: datetime | None) -> str:
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
    lag = inc.detected_at - inc.start
    txt += f" pollwatch detected it on {when_text(watch, inc.detected_at)}, {fmt_duration(lag)} after its onset."
    return txt


def _how_measured(watch: Watch, inc: Incident, anomalies: list[Anomaly]) -> str:
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
            f"({_names([watch.provider_name(a) for a in networks])})"
        )
    if regions:
        where.append(
            f"{len(regions)} region{'s' if len(regions) != 1 else ''} "
            f"({_names([watch.region_name(r) for r in regions])})"
        )
    agree = "agreed" if len(sigs) > 1 else "showed it"
    txt = f"{'These signals' if len(sigs) > 1 else 'One signal'} {agree}: {_names(parts)}."
    if where:
        txt += f" They fell outside their usual range in {len(series)} series, for {_names(where)}."
    return txt


def _cause(watch: Watch, inc: Incident) -> tuple[str, list[str]]:
    words = CAUSE_WORDS[inc.cause]
    if inc.override:
        by, why = _clean(inc.override.get("by", "a responder")), _clean(inc.override.get("why", ""))
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
    items = [f"for: {_clean(e.detail)}" for e in sorted(for_, key=lambda e: -e.weight)[:5]]
    items += [f"against: {_clean(e.detail)}" for e in sorted(against, key=lambda e: -abs(e.weight))[:3]]
    return txt, items


def methodology(watch: Watch, signals: list[str]) -> str:
    """How pollwatch judges the signals of this statement, from the playbook in force."""
    parts = []
    for sig in signals:
        cfg = watch.signals.get(sig)
        if cfg is None:
            continue
        what = SIGNAL_WORDS.get(sig, sig)
        src = SOURCE_WORDS.get(cfg.source, cfg.source)
        if cfg.detector == "cusum":
            parts.append(
                f"{what} ({src}), per network and service every {format_duration(cfg.step)}, is judged with a "
                f"two-sided CUSUM (OONI's method) against that network's own usual failure rate, so that both a "
                f"block and its end are detected"
            )
        elif cfg.direction is Direction.drop:
            thr = f"below {cfg.critical:.0%} of it" if cfg.mode == "ratio" else f"more than {cfg.critical:g} below it"
            parts.append(
                f"{what} ({src}) is compared with its expected level, the median of the previous "
                f"{format_duration(cfg.window)}; a value {thr} is critical"
            )
        else:
            thr = f"above {cfg.critical:g} times it" if cfg.mode == "ratio" else f"more than {cfg.critical:g} above it"
            parts.append(
                f"{what} ({src}) is compared with the median of the previous {format_duration(cfg.window)}; "
                f"a value {thr} is critical"
            )
    cls = watch.classification
    txt = "; ".join(parts)
    txt = (txt[0].upper() + txt[1:] + ". ") if txt else ""
    return (
        txt + "Missing data is never counted as an outage: a silent source is a gap. Anomalies of one kind that start "
        f"within {format_duration(cls.join_gap)} of each other, or share a network, region or service, form one "
        "incident; "
        f"it is nationwide when the country's own series falls with {cls.nationwide_share:.0%} of its address "
        "space affected. The likely cause is "
        "scored from the evidence listed, with a confidence; a responder may confirm or correct it, and their word "
        "is the one shown."
    )


def statement(data: BriefData) -> list[Block]:
    """The whole draft as blocks, every sentence made from `data`."""
    w = data.watch
    incs = data.incidents
    blocks = [Block("h1", headline(w, incs))]
    country = country_name(w.country or "")
    election = f"{country}, {w.election}" if w.election else f"{country}, election"
    if not incs:
        blocks.append(Block("p", f"{election}: pollwatch recorded no incident in the range asked for."))
        return blocks
    ongoing = [i for i in incs if i.status != "resolved" or i.end is None]
    kinds = [KIND_TITLES[i.kind].lower() for i in incs]
    lead = (
        (
            f"{election} of {w.election_date.day} {w.election_date:%B %Y}: pollwatch recorded "
            f"{len(incs)} incident{'s' if len(incs) != 1 else ''}: {_names(kinds, limit=8)}."
        )
        if w.election_date
        else f"pollwatch recorded {len(incs)} incidents in {country}: {_names(kinds, limit=8)}."
    )
    if ongoing:
        lead += f" {len(ongoing)} {'was' if len(ongoing) == 1 else 'were'} still ongoing at the last measurement."
    blocks.append(Block("p", lead))
    signals: list[str] = []
    for inc in incs:
        anoms = [data.anomalies[a] for a in inc.anomaly_ids if a in data.anomalies]
        title = KIND_TITLES[inc.kind] + (f": {_names(_services(w, inc))}" if inc.scope.services else "")
        blocks.append(Block("h2", f"{title}, from {when_text(w, inc.start)}"))
        blocks.append(Block("p", _what(w, inc, anoms)))
        where = []
        if _providers(w, inc):
            label = network_label(w, inc.scope.asns)
            where.append(f"Providers: {_names(_providers(w, inc), limit=12)}" + (f" ({label})" if label else "") + ".")
        if inc.scope.regions:
            where.append(f"Regions: {_names(_regions(w, inc), limit=12)}.")
        if inc.kind is IncidentKind.nationwide_outage and not where:
            where.append("The country as a whole.")
        if where:
            blocks.append(Block("p", "Where: " + " ".join(where)))
        blocks.append(Block("p", "When: " + _when(w, inc, data.as_of)))
        if inc.scope.services:
            noun = "Circumvention tools" if inc.kind is IncidentKind.circumvention_block else "Services"
            blocks.append(Block("p", f"{noun}: {_names(_services(w, inc), limit=12)}."))
        blocks.append(Block("ul", "How deep:", items=_depth_items(w, inc, anoms, data.observations.get(inc.id, []))))
        blocks.append(
            Block(
                "p",
                f"Severity: {inc.severity_band}, {inc.severity_index} on pollwatch's 0-100 scale "
                "(ten points per factor of ten in depth × duration, corroborating signals multiplied).",
            )
        )
        blocks.append(Block("p", "How it was measured: " + _how_measured(w, inc, anoms)))
        cause, evidence = _cause(w, inc)
        blocks.append(Block("ul", "Likely cause: " + cause + (" The evidence:" if evidence else ""), items=evidence))
        if len(inc.kind_history) > 1:
            steps = [f"{h.get('from')} → {h.get('to')} at {h.get('at')}" for h in inc.kind_history[1:]]
            blocks.append(Block("p", "Its classification changed as it spread: " + "; ".join(steps) + "."))
        blocks.append(Block("chart", incident_id=inc.id))
        blocks.append(Block("meta", f"incident {inc.id}, version {inc.version}, last updated {iso(inc.updated_at)}"))
        signals += [s for s in inc.scope.signals if s not in signals]
    blocks.append(Block("h2", "How pollwatch measures"))
    blocks.append(Block("p", methodology(w, signals)))
    blocks.append(
        Block(
            "meta",
            f"Drafted by pollwatch {__version__} on {iso(data.generated_at)} from the records of watch "
            f"{w.name}: review before publishing.",
        )
    )
    return blocks


# --- rendering ------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")


def _md(s: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", _clean(s))


def render_markdown(blocks: list[Block], charts: dict[str, str] | None = None) -> str:
    """Markdown; `charts` maps incident ids to the chart image's path or URL (missing: no chart line)."""
    out: list[str] = []
    for b in blocks:
        if b.kind == "h1":
            out += [f"# {_md(b.text)}", ""]
        elif b.kind == "h2":
            out += [f"## {_md(b.text)}", ""]
        elif b.kind == "h3":
            out += [f"### {_md(b.text)}", ""]
        elif b.kind == "p":
            out += [_md(b.text), ""]
        elif b.kind == "ul":
            out += [_md(b.text)] if b.text else []
            out += [f"- {_md(i)}" for i in b.items] + [""]
        elif b.kind == "chart":
            ref = (charts or {}).get(b.incident_id or "")
            if ref:
                out += [f"![signals against their baseline, incident {b.incident_id}]({ref})", ""]
        elif b.kind == "meta":
            out += [f"*{_md(b.text)}*", ""]
    return "\n".join(out).rstrip() + "\n"


def _e(s: str) -> str:
    return html.escape(_clean(s), quote=True)


def render_html(blocks: list[Block], charts: dict[str, bytes] | None = None) -> str:
    """One self-contained HTML page (charts inline as PNG data, no scripts, nothing loaded from elsewhere)."""
    body: list[str] = []
    title = next((b.text for b in blocks if b.kind == "h1"), "pollwatch statement")
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            body.append(f"<{b.kind}>{_e(b.text)}</{b.kind}>")
        elif b.kind == "p":
            body.append(f"<p>{_e(b.text)}</p>")
        elif b.kind == "ul":
            body.append(
                (f"<p>{_e(b.text)}</p>" if b.text else "")
                + "<ul>"
                + "".join(f"<li>{_e(i)}</li>" for i in b.items)
                + "</ul>"
            )
        elif b.kind == "chart":
            png = (charts or {}).get(b.incident_id or "")
            if png:
                data = base64.b64encode(png).decode()
                body.append(
                    f"<img alt='signals against their baseline, incident {_e(b.incident_id or '')}' "
                    f"src='data:image/png;base64,{data}'>"
                )
        elif b.kind == "meta":
            body.append(f"<p class='meta'>{_e(b.text)}</p>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        'img-src data:">\n'
        f"<title>{_e(title)}</title><style>body{{font-family:Georgia,serif;max-width:46em;margin:2em "
        "auto;line-height:1.5}"
        "img{max-width:100%}.meta{color:#666;font-size:.85em}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _chart_png(data: BriefData, inc: Incident) -> bytes | None:
    from pollwatch.charts import incident_chart

    anoms = [data.anomalies[a] for a in inc.anomaly_ids if a in data.anomalies]
    return incident_chart(data.watch, inc, anoms, data.observations.get(inc.id, []))


def render(data: BriefData, fmt: Format = "md", out: str | Path | None = None) -> str:
    """The draft in `fmt`. Markdown charts are written as PNG files beside `out` (none without `out`);
    HTML carries them inline."""
    blocks = statement(data)
    if fmt == "html":
        pngs = {i.id: p for i in data.incidents if (p := _chart_png(data, i)) is not None}
        return render_html(blocks, pngs)
    refs: dict[str, str] = {}
    if out is not None:
        out = Path(out)
        folder = out.with_name(out.stem + "-charts")
        for inc in data.incidents:
            png = _chart_png(data, inc)
            if png is None:
                continue
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"incident-{inc.id}.png"
            path.write_bytes(png)
            refs[inc.id] = f"{folder.name}/{path.name}"
    return render_markdown(blocks, refs)


def write_brief(
    watch: Watch,
    out: str | Path,
    fmt: Format = "md",
    *,
    incident: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    url: str | None = None,
) -> BriefData:
    """Collect from the store, write the draft to `out`, and record its SHA-256 in the audit log."""
    from pollwatch import audit

    with store.session_scope(url) as s:
        data = collect(s, watch, incident=incident, since=since, until=until)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data, fmt, out), encoding="utf-8")
    with store.session_scope(url) as s:
        audit.record_report(
            s,
            watch=watch.name,
            path=out,
            what=f"brief-{fmt}",
            params={"incident": incident, "from": since, "until": until},
        )
    return data


def incident_statement(watch: Watch, incident_id: str, *, url: str | None = None) -> str:
    """The Markdown draft for one incident (no charts): what a Slack thread or button shows."""
    with store.session_scope(url) as s:
        data = collect(s, watch, incident=incident_id)
    return render_markdown(statement(data))


def default_range(watch: Watch) -> tuple[datetime, datetime]:
    """From the eve of election day to three days after (local), when no range is given."""
    return watch.at_offset(timedelta(days=-1)), watch.at_offset(timedelta(days=4))
