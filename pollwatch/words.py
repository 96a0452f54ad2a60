"""An incident in words, the same wherever people read it: Slack, the console, charts and the public statement.

Plain text (no markup, nothing escaped): each sink escapes for itself (`pollwatch.notify.render` for Slack,
`pollwatch.brief` for Markdown and HTML, `pollwatch.sinks.terminal_safe` for a terminal).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from functools import cache

import pycountry

from pollwatch.models import Anomaly, Cause, Direction, Incident, IncidentKind
from pollwatch.playbook import Watch

KIND_TITLES = {
    IncidentKind.nationwide_outage: "Nationwide internet outage",
    IncidentKind.regional_outage: "Regional internet outage",
    IncidentKind.network_outage: "Network outage",
    IncidentKind.service_block: "Service blocked",
    IncidentKind.circumvention_block: "Circumvention tools blocked",
    IncidentKind.throttling: "Throttling",
}
CAUSE_WORDS = {
    Cause.government_directed: "government-directed shutdown",
    Cause.power_outage: "power outage",
    Cause.cable_cut: "cable cut",
    Cause.weather_or_disaster: "weather or disaster",
    Cause.technical: "technical failure",
    Cause.unknown: "unknown",
}
RISE_KINDS = (
    IncidentKind.service_block,
    IncidentKind.circumvention_block,
    IncidentKind.throttling,
)  # measured as rises
OUTAGE_KINDS = (IncidentKind.nationwide_outage, IncidentKind.regional_outage, IncidentKind.network_outage)


# Country names as data sets spell them (IODA's curated list, #KeepItOn) that pycountry does not find, or finds wrongly
COUNTRY_ALIASES = {
    "Democratic Republic of (DRC)": "CD",
    "Congo": "CG",
    "Ivory Coast (Cote d'Ivoire)": "CI",
    "Myanmar/Burma": "MM",
    "Great Britain": "GB",
    "Kyrgyz Republic (Kyrgyzstan)": "KG",
    "Russian Federation": "RU",
    "Iran": "IR",
    "Syria": "SY",
    "Laos": "LA",
    "Vietnam": "VN",
    "Bolivia": "BO",
    "Tanzania": "TZ",
    "Moldova": "MD",
    "Macedonia": "MK",
    "Swaziland": "SZ",
    "Cape Verde": "CV",
    "Federated States Of Micronesia": "FM",
    "Timor Leste": "TL",
    "Timor-Leste": "TL",
    "Turkey": "TR",
    "United States of America (USA)": "US",
    "Antigua & Barbuda": "AG",
    "Bosnia & Herzegovina": "BA",
    "Taiwan": "TW",
    "Saint Martin": "MF",
    "Sao Tome And Principe": "ST",
    "Turks And Caicos Islands": "TC",
    "Brunei Darussalam": "BN",
    "Bonaire, Sint Eustatius and Saba": "BQ",
    "Curacao": "CW",
    "Reunion": "RE",
    "Hong Kong": "HK",
    "Czech Republic": "CZ",
    "Venezuela": "VE",
    "South Korea": "KR",
    "North Korea": "KP",
    "Palestine": "PS",
    "Ivory Coast": "CI",
    "Democratic Republic of the Congo": "CD",
    "Republic of the Congo": "CG",
}
_FILLER = frozenset({"the", "of", "and"})


def _words(text: str) -> frozenset[str]:
    """A name's words, however a data set spells it: 'SriLanka', 'Iran (Islamic Republic of)', 'Congo, The Democratic
    Republic of the' and 'DemocraticRepublicCongo' give the words of 'Sri Lanka', 'Iran, Islamic Republic of' ..."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", plain.replace("&", " and "))
    return frozenset(w for w in re.findall(r"[a-z]+", spaced.lower()) if w not in _FILLER)


@cache
def _countries_by_words() -> dict[frozenset[str], str]:
    out: dict[frozenset[str], str] = {}
    for c in pycountry.countries:
        for field in ("name", "common_name", "official_name"):
            if (name := getattr(c, field, None)) and (key := _words(name)):
                out.setdefault(key, c.alpha_2)
    for name, code in COUNTRY_ALIASES.items():
        out.setdefault(_words(name), code)
    return out


def country_code(name_or_code: str) -> str | None:
    """ISO 3166-1 alpha-2 code from an alpha-3 or alpha-2 code or a country name as data sets spell it ('IRN', 'Iran',
    'Myanmar/Burma'); None when it is not a country."""
    text = name_or_code.strip()
    if text in COUNTRY_ALIASES:
        return COUNTRY_ALIASES[text]
    if len(text) in (2, 3):
        c = pycountry.countries.get(**{f"alpha_{len(text)}": text.upper()})
        if c is not None:
            return c.alpha_2
    for field in ("name", "common_name", "official_name"):
        c = pycountry.countries.get(**{field: text})
        if c is not None:
            return c.alpha_2
    if (code := _countries_by_words().get(_words(text))) is not None:
        return code
    try:
        return pycountry.countries.search_fuzzy(text)[0].alpha_2
    except LookupError:
        return None


def country_name(code: str) -> str:
    """A country's common name from its ISO 3166-1 alpha-2 code (`KZ` -> `Kazakhstan`); the code when unknown."""
    c = pycountry.countries.get(alpha_2=code)
    return getattr(c, "common_name", None) or (c.name if c else code)


def fmt_when(watch: Watch, dt: datetime | None) -> str:
    """`2019-06-09 05:00 UTC (11:00 ALMT, election day)`: UTC first, then the election's local time."""
    if dt is None:
        return "ongoing"
    local = dt.astimezone(watch.tz)
    day = ""
    if watch.election_date is not None:
        delta = (local.date() - watch.election_date).days
        day = ", election day" if delta == 0 else f", E{delta:+d}d"
    same_day = local.date() == dt.date()
    local_txt = f"{local:%H:%M}" if same_day else f"{local:%Y-%m-%d %H:%M}"
    return f"{dt:%Y-%m-%d %H:%M} UTC ({local_txt} {watch.local_label(dt)}{day})"


def reach_words(share: float) -> str:
    """How many people an incident reaches, in words, from its measured share of the country
    (address space, providers or regions): `most users` from 60 %, `many users` from 30 %, else
    `some networks`."""
    return next(
        (words for floor, words in ((0.6, "most users"), (0.3, "many users")) if share >= floor), "some networks"
    )


def fmt_duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def service_labels(watch: Watch, inc: Incident) -> list[str]:
    return [watch.service_label(s) for s in inc.scope.services]


def provider_labels(watch: Watch, inc: Incident) -> list[str]:
    if inc.scope.asns:
        return [f"{watch.provider_name(a)} (AS{a})" for a in inc.scope.asns]
    return list(inc.scope.providers)


def region_labels(watch: Watch, inc: Incident) -> list[str]:
    names = {r.code: r.name for r in watch.regions}
    return [f"{names[r]} ({r})" if r in names else r for r in inc.scope.regions]


def scope_text(watch: Watch, inc: Incident) -> str:
    """The scope with the watch's names: providers, regions, services, networks, reach, what is back to normal."""
    parts = []
    if provider_labels(watch, inc):
        parts.append("providers: " + ", ".join(provider_labels(watch, inc)))
    if inc.scope.regions:
        parts.append("regions: " + ", ".join(region_labels(watch, inc)))
    if inc.scope.services:
        parts.append("services: " + ", ".join(service_labels(watch, inc)))
    if inc.scope.network_types:
        parts.append("networks: " + "/".join(inc.scope.network_types))
    if inc.scope.share:
        parts.append(f"{reach_words(inc.scope.share)} ({inc.scope.share:.0%} of the country measured)")
    if inc.scope.recovered and inc.end is None:
        parts.append("back to normal: " + ", ".join(inc.scope.recovered))
    return "; ".join(parts) or "whole country"


def scope_line(inc: Incident) -> str:
    """The scope as the incident records it, without the watch's names (reports and replay summaries)."""
    parts = []
    if inc.scope.providers:
        parts.append("providers: " + ", ".join(f"{n} (AS{a})" for n, a in zip(inc.scope.providers, inc.scope.asns)))
    if inc.scope.regions:
        parts.append("regions: " + ", ".join(inc.scope.regions))
    if inc.scope.services:
        parts.append("services: " + ", ".join(inc.scope.services))
    if inc.scope.network_types:
        parts.append("networks: " + "/".join(inc.scope.network_types))
    if inc.scope.recovered and inc.end is None:
        parts.append("back to normal: " + ", ".join(inc.scope.recovered))
    return "; ".join(parts) or "whole country"


def fmt_number(x: float | None) -> str:
    """A measured value: two decimals under 10, else whole with thousands separators; `?` when unknown."""
    if x is None:
        return "?"
    if abs(x) < 10:
        return f"{x:.2f}"
    return f"{x:,.0f}"


def current_depth(a: Anomaly) -> float | None:
    """The change the anomaly's latest point shows against its expectation, in its depth's units."""
    if a.observed is None or a.expected is None:
        return None
    if a.direction is Direction.drop:
        return max(0.0, 1 - a.observed / a.expected) if a.expected > 0 else None
    if a.evidence.get("mode") == "delta":
        return max(0.0, a.observed - a.expected)
    return max(0.0, a.observed / a.expected - 1) if a.expected > 0 else None


def depth_lines(inc: Incident, anomalies: list[Anomaly]) -> list[str]:
    """Per signal, the deepest anomaly: its latest value versus expected with that change, and its deepest change
    (so the numbers shown and the % beside them agree)."""
    best: dict[str, Anomaly] = {}
    for a in anomalies:
        cur = best.get(a.signal)
        if cur is None or (a.entity.level == "country", a.depth) > (cur.entity.level == "country", cur.depth):
            best[a.signal] = a
    lines = []
    for sig, a in sorted(best.items(), key=lambda kv: -kv[1].depth):
        word = "drop" if a.direction is Direction.drop else "rise"
        sign = "−" if a.direction is Direction.drop else "+"
        now = current_depth(a)
        line = f"{sig} ({a.entity.key}): {fmt_number(a.observed)} vs {fmt_number(a.expected)} expected"
        if now is not None:
            line += f" ({sign}{now:.0%})"
        if now is None or round(now, 2) != round(a.depth, 2):
            line += f", deepest {word} {sign}{a.depth:.0%}"
        lines.append(line)
    if not lines:
        word = "rise" if inc.kind in RISE_KINDS else "drop"
        lines.append(f"{word} {inc.depth:.0%} against the baseline")
    return lines


def pattern_text(inc: Incident) -> str | None:
    """A recurring incident's schedule in one line ('recurring: 23 episodes, daily 01:00-09:10 local (Asia/Almaty),
    1 expected episode missed'); a lone pair's second episode says it is not confirmed yet; None for a one-off."""
    pat = inc.pattern
    if pat is None:
        return None
    if pat.tentative and inc.episodes:
        first = inc.episodes[0]
        return (
            f"recurring? the same time as the cut of {first.start.date().isoformat()} "
            f"({first.local_start}-{first.local_end or '?'} local): confirmed or split off when this one ends"
        )
    missed = f", {pat.missed} expected episode(s) missed" if pat.missed else ""
    return f"recurring: {pat.episodes} episodes, {pat.period} {pat.window} ({pat.timezone}){missed}"


def cause_text(inc: Incident) -> str:
    txt = f"{CAUSE_WORDS[inc.cause]} (confidence {inc.cause_confidence:.0%})"
    if inc.override:
        who, why = inc.override.get("by", "a responder"), inc.override.get("why", "")
        txt += f" — set by {who}" + (f": {why}" if why else "")
    return txt


def top_evidence(inc: Incident, n: int = 3) -> list[str]:
    """The strongest evidence for the cause, then what could not be judged (evidence the watch lacks data for)."""
    judged = [e for e in inc.evidence if not e.numbers.get("not_judged")]
    ranked = sorted(judged, key=lambda e: (e.supports != inc.cause, -e.weight))
    return [e.detail for e in ranked[:n]] + [
        f"not judged: {e.detail}" for e in inc.evidence if e.numbers.get("not_judged")
    ]


def headline(watch: Watch, inc: Incident, tag: str) -> str:
    """`[STARTED] Nationwide internet outage in KZ — kz-2019-presidential (incident 3f2a...)`, with the services of a
    block named (`Service blocked in KZ: Periscope — ...`): pollwatch.alerts' head line."""
    what = f"{KIND_TITLES[inc.kind]} in {inc.country}"
    if inc.scope.services:
        what += ": " + ", ".join(watch.service_label(x) for x in inc.scope.services)
    return f"[{tag}] {what} — {watch.name} (incident {inc.id})"
