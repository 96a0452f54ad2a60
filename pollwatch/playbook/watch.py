"""A template (`Playbook`) and a watch (`Watch`: a template with a country, a date and its networks), with the
phases resolved to absolute times."""

from __future__ import annotations

import difflib
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones
from typing import Annotated

import pycountry
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    field_validator,
    model_validator,
)

from pollwatch.models import Family
from pollwatch.playbook.fields import Duration, _Strict, _watch_name
from pollwatch.playbook.sections import (
    AlertRouting,
    Attribution,
    Classification,
    ContextEvent,
    Milestone,
    Phase,
    Provider,
    Region,
    Service,
    SignalConfig,
    SourceConfig,
    TickLimits,
    Vantage,
)
from pollwatch.timeutil import parse_time


class Playbook(_Strict):
    """A template merged with a watch: everything a run needs to know."""

    name: Annotated[str, AfterValidator(_watch_name)]
    description: str = ""
    template: str | None = None
    country: str | None = None
    election: str | None = None
    election_date: date | None = None
    timezone: str = "UTC"
    # how local times are labelled ("ALMT"); default: the zone's own abbreviation
    timezone_abbreviation: str | None = None
    phases: list[Phase] = Field(default_factory=list)
    signals: dict[str, SignalConfig] = Field(default_factory=dict)
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    providers: list[Provider] = Field(default_factory=list)
    regions: list[Region] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    circumvention: list[Service] = Field(default_factory=list)
    milestones: list[Milestone] = Field(default_factory=list)
    events: list[ContextEvent] = Field(default_factory=list)
    vantages: list[Vantage] = Field(default_factory=list)
    classification: Classification = Field(default_factory=Classification)
    attribution: Attribution = Field(default_factory=Attribution)
    alerts: AlertRouting = Field(default_factory=AlertRouting)
    tick: TickLimits = Field(default_factory=TickLimits)
    # `file:line: field: message` from loading: valid, but worth a look
    warnings: list[str] = Field(default_factory=list, exclude=True)

    @field_validator("country")
    @classmethod
    def _country(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if pycountry.countries.get(alpha_2=v.upper()) is None:
            meant = _country_meant(v)
            hint = f": write {meant.alpha_2!r} ({meant.name})" if meant is not None else " such as 'KZ'"
            raise ValueError(f"unknown country {v!r}: expected an ISO 3166-1 alpha-2 code{hint}")
        return v.upper()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            close = difflib.get_close_matches(v, sorted(available_timezones()), n=1, cutoff=0.8)
            hint = f": did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown time zone {v!r}: expected an IANA name such as 'Asia/Almaty'{hint}") from None
        return v

    @model_validator(mode="after")
    def _cross(self) -> "Playbook":
        for svc in self.services + self.circumvention:
            if not svc.name:
                raise ValueError("a service needs a name")
        return self


def _country_meant(text: str) -> object | None:
    """The country an alpha-3 code or a name in a `country:` field means ('GHA', 'Ghana'), or None."""
    if len(text) == 3 and (c := pycountry.countries.get(alpha_3=text.upper())) is not None:
        return c
    try:
        return pycountry.countries.lookup(text)
    except LookupError:
        return None


class Watch(Playbook):
    """A concrete election watch: a playbook with a country, a date and a time zone."""

    source_file: str | None = Field(default=None, exclude=True)
    content_hash: str | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _required(self) -> "Watch":
        missing = [f for f in ("country", "election_date") if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a watch needs {', '.join(missing)}")
        return self

    # --- derived views --------------------------------------------------------------------
    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def election_midnight(self) -> datetime:
        d = self.election_date
        assert d is not None
        return datetime(d.year, d.month, d.day, tzinfo=self.tz)

    def at_offset(self, offset: timedelta) -> datetime:
        """Election day 00:00 local plus an offset, in UTC; whole days move on the local calendar (DST-safe)."""
        d = self.election_date
        assert d is not None
        days = int(offset / timedelta(days=1))
        rest = offset - timedelta(days=days)
        day = d + timedelta(days=days)
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.tz)
        return midnight.astimezone(timezone.utc) + rest

    def resolved_phases(self) -> list["ResolvedPhase"]:
        return [
            ResolvedPhase(
                name=p.name,
                start=self.at_offset(p.start),
                end=self.at_offset(p.end),
                cadence=p.cadence,
                timezone=self.timezone,
            )
            for p in self.phases
        ]

    def phase_at(self, when: datetime) -> "ResolvedPhase | None":
        for phase in self.resolved_phases():
            if phase.start <= when < phase.end:
                return phase
        return None

    def tick_times(self, start: datetime, end: datetime) -> list[datetime]:
        """Tick times in [start, end) at each phase's cadence (the heightened cadence outside phases)."""
        from pollwatch.timeutil import tick_grid

        fallback = min((p.cadence for p in self.phases), default=timedelta(minutes=5))
        ticks: set[datetime] = set()
        covered: list[tuple[datetime, datetime]] = []
        for phase in self.resolved_phases():
            lo, hi = max(start, phase.start), min(end, phase.end)
            if lo < hi:
                ticks.update(t for t in tick_grid(lo, hi, phase.cadence) if t < hi)
                covered.append((lo, hi))
        # stretches no phase covers still tick, at the finest cadence
        cursor = start
        for lo, hi in sorted(covered) + [(end, end)]:
            if cursor < lo:
                ticks.update(t for t in tick_grid(cursor, lo, fallback) if t < lo)
            cursor = max(cursor, hi)
        return sorted(ticks)

    def milestone_times(self) -> dict[str, datetime]:
        out = {}
        for m in self.milestones:
            out[m.name] = self.milestone_time(m)
        return out

    def milestone_time(self, m: Milestone) -> datetime:
        return self.local_time(m.at)

    def local_time(self, text: str) -> datetime:
        """'HH:MM' on election day or 'YYYY-MM-DDTHH:MM' (local unless it has a zone), as UTC."""
        text = text.strip()
        d = self.election_date
        assert d is not None
        if "T" in text or len(text) > 8:
            return parse_time(text, zone=self.tz)
        t = time.fromisoformat(text)
        return datetime(d.year, d.month, d.day, t.hour, t.minute, tzinfo=self.tz).astimezone(timezone.utc)

    def provider(self, asn: int | None) -> Provider | None:
        return next((p for p in self.providers if p.asn == asn), None)

    def local_label(self, dt: datetime) -> str:
        """The label of local time at `dt`: the watch's `timezone_abbreviation`, else the zone's own
        abbreviation when it is a word (EAT, CEST), else the offset (UTC+6)."""
        if self.timezone_abbreviation:
            return self.timezone_abbreviation
        local = dt.astimezone(self.tz)
        name = local.tzname() or ""
        if name.isalpha():
            return name
        off = local.utcoffset() or timedelta(0)
        minutes = int(off.total_seconds() // 60)
        sign = "+" if minutes >= 0 else "-"
        h, m = divmod(abs(minutes), 60)
        return f"UTC{sign}{h}" + (f":{m:02d}" if m else "")

    def service_label(self, name: str) -> str:
        """A service's or circumvention tool's display name (its `label`, else its name)."""
        for s in self.services + self.circumvention:
            if s.name == name:
                return s.label or s.name
        return name

    def region_name(self, code: str) -> str:
        """A region's name from the watch's table (its code when the watch does not list it)."""
        for r in self.regions:
            if r.code == code:
                return r.name
        return code

    def region(self, code_or_name: str) -> Region | None:
        return next((r for r in self.regions if code_or_name in (r.code, r.name, *r.aliases)), None)

    def provider_name(self, asn: int) -> str:
        p = self.provider(asn)
        return p.name if p else f"AS{asn}"

    @property
    def circumvention_names(self) -> set[str]:
        return {c.name for c in self.circumvention}

    def family_of(self, signal: str, service: str | None) -> Family:
        cfg = self.signals.get(signal)
        if service is not None and service in self.circumvention_names:
            return Family.circumvention
        return cfg.family if cfg else Family.connectivity


class ResolvedPhase(BaseModel):
    name: str
    start: datetime
    end: datetime
    cadence: Duration
    timezone: str

    def ticks(self) -> list[datetime]:
        from pollwatch.timeutil import tick_grid

        return tick_grid(self.start, self.end - timedelta(microseconds=1), self.cadence)
