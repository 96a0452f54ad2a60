"""The whole statement as a list of blocks (headline, lead, one section per incident, methodology), every sentence
made from the store's records (`BriefData`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pollwatch import __version__
from pollwatch.brief.data import BriefData
from pollwatch.brief.sentences import (
    SIGNAL_WORDS,
    SOURCE_WORDS,
    cause_paragraph,
    depth_items,
    how_measured_text,
    join_names,
    recurrence_text,
    timeline_text,
    what_text,
    when_text,
)
from pollwatch.classify import network_label
from pollwatch.models import Direction, Incident, IncidentKind, iso
from pollwatch.playbook import Watch
from pollwatch.timeutil import format_duration
from pollwatch.words import (
    KIND_TITLES,
    OUTAGE_KINDS,
    country_name,
    fmt_when,
    provider_labels,
    region_labels,
    service_labels,
)


@dataclass
class Block:
    kind: Literal["h1", "h2", "h3", "p", "ul", "chart", "meta"]
    text: str = ""
    items: list[str] = field(default_factory=list)
    incident_id: str | None = None


def headline(watch: Watch, incidents: list[Incident]) -> str:
    """One line naming what was restricted, where and when, from the incidents' kinds, services and dates."""
    country = country_name(watch.country or "")
    if not incidents:
        return f"No internet disruption recorded in {country}"
    outages = [i for i in incidents if i.kind in OUTAGE_KINDS]
    others = [i for i in incidents if i.kind not in OUTAGE_KINDS]
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
        for n in (
            ["circumvention tools"] if i.kind is IncidentKind.circumvention_block else service_labels(watch, i)
        ) or ["online services"]:
            if n not in names:
                names.append(n)
    if names:
        verb = "slowed" if all(i.kind is IncidentKind.throttling for i in others) else "restricted"
        parts.append(f"{join_names(names, limit=5)} {verb}")
    what = " and ".join(parts) if len(parts) < 2 else f"{parts[0]}; {parts[1]}"
    what = what[0].upper() + what[1:]
    days = sorted({start.astimezone(watch.tz).date() for i in incidents for start, _ in i.spans()})
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
        "space affected, across more than one network (one network alone only when it holds "
        f"{cls.single_network_share:.0%} of the country). The likely cause is "
        "scored from the evidence listed, with a confidence; a responder may confirm or correct it, and their word "
        "is the one shown."
    )


def _lead(w: Watch, incs: list[Incident], country: str, election: str) -> str:
    """How many incidents of which kinds, and how many were still ongoing at the last measurement."""
    ongoing = [i for i in incs if i.status != "resolved" or i.end is None]
    kinds = [KIND_TITLES[i.kind].lower() for i in incs]
    lead = (
        (
            f"{election} of {w.election_date.day} {w.election_date:%B %Y}: pollwatch recorded "
            f"{len(incs)} incident{'s' if len(incs) != 1 else ''}: {join_names(kinds, limit=8)}."
        )
        if w.election_date
        else f"pollwatch recorded {len(incs)} incidents in {country}: {join_names(kinds, limit=8)}."
    )
    if ongoing:
        lead += f" {len(ongoing)} {'was' if len(ongoing) == 1 else 'were'} still ongoing at the last measurement."
    return lead


def _where(w: Watch, inc: Incident) -> str | None:
    where = []
    if provider_labels(w, inc):
        label = network_label(w, inc.scope.asns)
        where.append(
            f"Providers: {join_names(provider_labels(w, inc), limit=12)}" + (f" ({label})" if label else "") + "."
        )
    if inc.scope.regions:
        where.append(f"Regions: {join_names(region_labels(w, inc), limit=12)}.")
    if inc.kind is IncidentKind.nationwide_outage and not where:
        where.append("The country as a whole.")
    return "Where: " + " ".join(where) if where else None


def _incident_blocks(data: BriefData, inc: Incident) -> list[Block]:
    """One incident's section: what, where, when, services, depth, severity, measurement, cause, chart."""
    w = data.watch
    anoms = [data.anomalies[a] for a in inc.anomaly_ids if a in data.anomalies]
    title = KIND_TITLES[inc.kind] + (f": {join_names(service_labels(w, inc))}" if inc.scope.services else "")
    blocks = [Block("h2", f"{title}, from {when_text(w, inc.first_start)}"), Block("p", what_text(w, inc, anoms))]
    where = _where(w, inc)
    if where:
        blocks.append(Block("p", where))
    recurred = recurrence_text(w, inc)
    latest = " (the latest episode)" if inc.pattern is not None and not inc.pattern.tentative else ""
    blocks.append(Block("p", f"When{latest}: " + timeline_text(w, inc, data.as_of)))
    if recurred:
        blocks.append(Block("p", recurred))
    if inc.scope.services:
        noun = "Circumvention tools" if inc.kind is IncidentKind.circumvention_block else "Services"
        blocks.append(Block("p", f"{noun}: {join_names(service_labels(w, inc), limit=12)}."))
    blocks.append(Block("ul", "How deep:", items=depth_items(w, inc, anoms, data.observations.get(inc.id, []))))
    blocks.append(
        Block(
            "p",
            f"Severity: {inc.severity_band}, {inc.severity_index} on pollwatch's 0-100 scale "
            "(ten points per factor of ten in depth × duration, corroborating signals multiplied).",
        )
    )
    blocks.append(Block("p", "How it was measured: " + how_measured_text(w, inc, anoms)))
    cause_txt, evidence = cause_paragraph(w, inc)
    blocks.append(Block("ul", "Likely cause: " + cause_txt + (" The evidence:" if evidence else ""), items=evidence))
    if len(inc.kind_history) > 1:
        steps = [f"{h.get('from')} → {h.get('to')} at {h.get('at')}" for h in inc.kind_history[1:]]
        blocks.append(Block("p", "Its classification changed as it spread: " + "; ".join(steps) + "."))
    blocks.append(Block("chart", incident_id=inc.id))
    blocks.append(Block("meta", f"incident {inc.id}, version {inc.version}, last updated {iso(inc.updated_at)}"))
    return blocks


def statement(data: BriefData) -> list[Block]:
    """The whole draft as blocks, every sentence made from `data`."""
    w = data.watch
    incs = data.incidents
    country = country_name(w.country or "")
    election = f"{country}, {w.election}" if w.election else f"{country}, election"
    if not incs and data.measured is False:
        span = " ".join(
            f"{word} {fmt_when(w, t)}" for word, t in (("from", data.since), ("until", data.until)) if t is not None
        )
        return [
            Block("h1", f"No measurements of {country} recorded"),
            Block(
                "p",
                f"{election}: pollwatch's store has no observation of {country}{' ' + span if span else ''}, "
                "so this draft can say nothing about disruptions. Check the store and the range (replays "
                "and the demo write to the replay store, which pollwatch --replay brief reads).",
            ),
        ]
    blocks = [Block("h1", headline(w, incs))]
    if not incs:
        blocks.append(Block("p", f"{election}: pollwatch recorded no incident in the range asked for."))
        return blocks
    blocks.append(Block("p", _lead(w, incs, country, election)))
    signals: list[str] = []
    for inc in incs:
        blocks += _incident_blocks(data, inc)
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
