"""The documented day `pollwatch demo` tells: a scenario file of what a report documented, simulated
around those times and scopes, and the comparison of what pollwatch alerted with what was documented.

A scenario (`playbooks/scenarios/*.yaml`) names a watch, the history to simulate as baseline, the
range to replay, the noise, and the documented events: the report's own words (`documented`), how
to simulate each (kind, services, start, end or null for "still going", depth) and how to tell
that an incident is that event (`match`: start within a tolerance, or on a local day, and a
duration range). `compare()` pairs incidents with documented events; incidents that match none
are listed as not documented (the demo's "nothing else alerted").
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from pollwatch.models import IncidentKind, utc
from pollwatch.playbook import PLAYBOOKS_DIR, Watch
from pollwatch.simulate import EventSpec, Scenario, simulate
from pollwatch.timeutil import parse_duration, parse_time, parse_time_or_none

SCENARIOS_DIR = PLAYBOOKS_DIR / "scenarios"
DEFAULT_SCENARIO = SCENARIOS_DIR / "kz-2019-election-day.yaml"


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the field."""


class Match(BaseModel):
    start_within: timedelta | None = None  # |incident start - documented start| at most this
    start_on_local_day: date | None = None  # the incident starts on this day in the watch's time zone
    duration: tuple[timedelta, timedelta] | None = None  # the incident lasted between these (when it ended)

    @field_validator("start_within", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> Any:
        return parse_duration(v) if v is not None else v

    @field_validator("duration", mode="before")
    @classmethod
    def _durs(cls, v: Any) -> Any:
        return tuple(parse_duration(x) for x in v) if v is not None else v


class DocumentedEvent(BaseModel):
    documented: str  # the report's words
    label: str  # the same in a few words, for the demo's table
    kind: IncidentKind
    services: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    asns: list[int] = Field(default_factory=list)
    start: datetime
    end: datetime | None = None
    depth: float = Field(default=0.9, gt=0, le=1)
    match: Match = Field(default_factory=Match)

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        return utc(v) if v is not None else v


class Noise(BaseModel):
    service_base: tuple[float, float] | None = None
    missing_rate: float = Field(default=0.005, ge=0, lt=1)


class DocumentedDay(BaseModel):
    watch: str
    reference: str = ""
    history_from: datetime
    replay_from: datetime
    until: datetime
    noise: Noise = Field(default_factory=Noise)
    signals: list[str] | None = None  # the signals the day had data for (default: every signal of the watch)
    events: list[DocumentedEvent]

    @field_validator("history_from", "replay_from", "until")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return utc(v)


def load_scenario(path: str | Path = DEFAULT_SCENARIO) -> DocumentedDay:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    try:
        day = DocumentedDay.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ScenarioError(f"{path}: {problems}") from None
    if not day.history_from < day.replay_from < day.until:
        raise ScenarioError(f"{path}: history_from < replay_from < until does not hold")
    return day


def event_specs(watch: Watch, day: DocumentedDay) -> list[EventSpec]:
    """The documented events as simulator events; one still going at the end runs past the data."""
    known = {s.name for s in watch.services + watch.circumvention}
    out = []
    for i, ev in enumerate(day.events):
        unknown = [s for s in ev.services if s not in known]
        if unknown:
            raise ScenarioError(
                f"events[{i}].services: {', '.join(unknown)} not in watch {watch.name}'s services or circumvention"
            )
        end = ev.end or day.until + timedelta(days=1)
        out.append(
            EventSpec(
                kind=ev.kind,
                start=ev.start,
                end=end,
                services=ev.services,
                regions=ev.regions,
                asns=ev.asns,
                depth=ev.depth,
            )
        )
    return out


def simulate_day(watch: Watch, day: DocumentedDay, seed: int = 1) -> Scenario:
    """Observations from `history_from` to `until` with the documented events and the scenario's noise."""
    if day.signals is not None:
        unknown = sorted(set(day.signals) - set(watch.signals))
        if unknown:
            raise ScenarioError(
                f"signals: {', '.join(unknown)} not among watch {watch.name}'s signals ({', '.join(watch.signals)})"
            )
        watch = watch.model_copy(update={"signals": {k: v for k, v in watch.signals.items() if k in day.signals}})
    return simulate(
        watch,
        day.history_from,
        day.until,
        event_specs(watch, day),
        seed=seed,
        missing_rate=day.noise.missing_rate,
        service_base=day.noise.service_base,
        country_services=True,
    )


# --- what was documented against what pollwatch alerted -----------------------------------------------


class Row(BaseModel):
    documented: str | None  # None: an incident the report does not mention
    event: DocumentedEvent | None = None
    incident: dict[str, Any] | None = None  # the incident's public JSON (docs/formats.md)
    ok: bool = False
    note: str = ""


def _matches(watch: Watch, ev: DocumentedEvent, inc: dict[str, Any]) -> bool:
    if inc["kind"] != ev.kind.value:
        return False
    if ev.services and not set(ev.services) & set(inc.get("services") or []):
        return False
    start = parse_time(inc["start"])
    m = ev.match
    if m.start_within is not None and abs(start - ev.start) > m.start_within:
        return False
    if m.start_on_local_day is not None and start.astimezone(watch.tz).date() != m.start_on_local_day:
        return False
    if m.start_within is None and m.start_on_local_day is None and abs(start - ev.start) > timedelta(hours=2):
        return False
    return True


def compare(watch: Watch, day: DocumentedDay, incidents: list[dict[str, Any]]) -> list[Row]:
    """One row per documented event (with the incident that is it, if any), then one per incident nobody documented."""
    rows: list[Row] = []
    used: set[str] = set()
    for ev in day.events:
        hit = next(
            (i for i in sorted(incidents, key=lambda i: i["start"]) if i["id"] not in used and _matches(watch, ev, i)),
            None,
        )
        if hit is None:
            rows.append(Row(documented=ev.documented, event=ev, note="not alerted"))
            continue
        used.add(hit["id"])
        notes = []
        missing = sorted(set(ev.services) - set(hit.get("services") or []))
        if missing:
            notes.append(f"missing {', '.join(watch.service_label(s) for s in missing)}")
        end = parse_time_or_none(hit.get("end"))
        if ev.match.duration is not None:
            lo, hi = ev.match.duration
            if end is None or not lo <= end - parse_time(hit["start"]) <= hi:
                notes.append("duration outside the documented range")
        if ev.end is None and end is not None:
            notes.append("ended, but the report says it went on")
        rows.append(Row(documented=ev.documented, event=ev, incident=hit, ok=not notes, note="; ".join(notes)))
    for inc in sorted(incidents, key=lambda i: i["start"]):
        if inc["id"] not in used:
            rows.append(Row(documented=None, incident=inc, note="not in the report"))
    return rows


def _hm(watch: Watch, dt: datetime) -> str:
    local = dt.astimezone(watch.tz)
    local_txt = f"{local:%H:%M}" if local.date() == dt.date() else f"{local:%d %b %H:%M}"
    return f"{dt:%d %b %H:%M} UTC ({local_txt} {watch.local_label(dt)})"


def _dur(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else ""
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h} h {m:02d} min" if h else f"{sign}{m} min"


def table(watch: Watch, rows: list[Row]) -> str:
    """The comparison as a plain-text table: documented, alerted (kind, scope),
    from, first alert, after onset, until.
    """
    header = ["documented", "pollwatch alerted", "from", "first alert", "after onset", "until"]
    body = []
    for r in rows:
        doc = r.event.label if r.event is not None else "(not documented)"
        inc = r.incident
        if inc is None:
            body.append([doc, "NOTHING", "-", "-", "-", "-"])
            continue
        start, det, end = parse_time(inc["start"]), parse_time(inc["detected_at"]), parse_time_or_none(inc.get("end"))
        what = inc["kind"].replace("_", " ")
        if inc.get("services"):
            what += ": " + ", ".join(watch.service_label(s) for s in inc["services"])
        if not r.ok:
            what += f" [{r.note}]"
        onset = r.event.start if r.event is not None else start
        until = f"{_hm(watch, end)} ({_dur(end - start)})" if end else "ongoing"
        body.append([doc, what, _hm(watch, start), _hm(watch, det), _dur(det - onset), until])
    widths = [max(len(x[i]) for x in [header] + body) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(b) for b in body])
