"""Playbook schema and loader.

A *template* (`playbooks/rapid-response.yaml`) holds the methodology: phases relative to
election day, signals with detector thresholds, classification, attribution and alert routing.
A *watch* file (`playbooks/watches/<country>-<year>-<election>.yaml`) names a template and adds
the country, date, time zone, providers, regions, services and milestones; any template key it
repeats overrides the template's value (mappings merge key by key, lists replace).

Every error names the file, the line and the field path, and says what was expected. Unknown
keys are errors. YAML is loaded with the safe loader only.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
from pathlib import Path
from typing import Annotated, Any, Literal

import pycountry
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from pollwatch.models import Direction, Family
from pollwatch.timeutil import format_duration, parse_duration


def playbooks_dir() -> Path:
    """The shipped playbooks: `pollwatch/playbooks/` in an installed package, else the repository's `playbooks/`
    (a checkout, or an editable install of one)."""
    here = Path(__file__).resolve().parent
    installed = here / "playbooks"
    return installed if installed.is_dir() else here.parent / "playbooks"


PLAYBOOKS_DIR = playbooks_dir()


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)]


def _asn(v: Any) -> Any:
    """An ASN as an integer; "AS20294" (how RIPEstat, OONI and IODA write them) is accepted, `true` is not 1."""
    if isinstance(v, bool):
        raise ValueError(f"expected an AS number such as 20294, got {v!r}")
    if isinstance(v, str):
        text = v.strip()
        digits = text[2:].strip() if text[:2].upper() == "AS" else text
        if not digits.isdigit():
            raise ValueError(f"expected an AS number such as 20294 (or 'AS20294'), got {v!r}")
        return int(digits)
    return v


ASN = Annotated[int, BeforeValidator(_asn), Field(gt=0, lt=2**32)]

# Watch names end up in Prefect artifact keys (lowercase letters, digits and dashes only: prefect/types/names.py,
# raise_on_name_alphanumeric_dashes_only), deployment and flow-run names, file names under reports/ and Slack text.
WATCH_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
# Prefect refuses these in flow, deployment, work-pool and block names (prefect/types/names.py BANNED_CHARACTERS)
PREFECT_BANNED = "/%&><"


def slug(text: str) -> str:
    """`text` as lowercase letters, digits and dashes (what a watch name must be)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:100] or "watch"


def _watch_name(v: str) -> str:
    if not WATCH_NAME.match(v):
        raise ValueError(
            f"{v!r}: a name may hold only lowercase letters, digits and dashes (Prefect's artifact keys and "
            f"the report's file name take nothing else), at most 100, starting with a letter or digit: "
            f"write {slug(v)!r}"
        )
    return v


def _prefect_name(v: str) -> str:
    bad = sorted({c for c in v if c in PREFECT_BANNED or ord(c) < 32})
    if not v.strip() or bad:
        raise ValueError(
            f"{v!r}: Prefect refuses names that are empty or hold any of {' '.join(PREFECT_BANNED)} or control "
            f"characters{' (found ' + ' '.join(repr(c) for c in bad) + ')' if bad else ''}"
        )
    return v


def _entity_part(v: str) -> str:
    """Names that go into entity keys (`KZ/region=Tehran/Rey/asn=9198`) cannot hold `=`: a key's fields start
    at `/field=`, so a name without `=` cannot fake one. A `/` is allowed (Monash names a county `Tehran/Rey`)."""
    bad = sorted({c for c in v if c == "=" or ord(c) < 32})
    if not v.strip() or bad:
        raise ValueError(f"{v!r}: expected a non-empty name without '=' or control characters")
    return v


def check_local_time(v: str | None) -> str | None:
    """A local time as the watch writes it: 'HH:MM' on election day, or ISO 8601
    'YYYY-MM-DDTHH:MM' (a zone optional).
    """
    if v is None:
        return v
    if not isinstance(v, str):
        raise ValueError(f"expected a local time 'HH:MM' or 'YYYY-MM-DDTHH:MM' in quotes, got {v!r}")
    text = v.strip()
    try:
        datetime.fromisoformat(text) if ("T" in text or len(text) > 8) else time.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"expected a local time 'HH:MM' (24-hour, e.g. '07:00' or '19:30') or 'YYYY-MM-DDTHH:MM', got {v!r}"
        ) from None
    return text


LocalTime = Annotated[str, BeforeValidator(check_local_time)]


class PlaybookError(ValueError):
    """A playbook failed to load; `problems` holds one `file:line: field: message` per issue."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid playbook:\n  " + "\n  ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Phase(_Strict):
    name: Annotated[str, AfterValidator(_prefect_name)]  # part of the phase's deployment name
    start: Duration = Field(description="offset from election day 00:00 local, e.g. -28d")
    end: Duration
    cadence: Duration

    @model_validator(mode="after")
    def _order(self) -> "Phase":
        if self.end <= self.start:
            raise ValueError(
                f"phase {self.name!r} ends ({format_duration(self.end)}) before it starts "
                f"({format_duration(self.start)})"
            )
        if self.cadence <= timedelta(0):
            raise ValueError("cadence must be positive")
        return self


class SignalConfig(_Strict):
    """How one signal is collected and judged. Thresholds follow DESIGN.md's anchors."""

    source: str
    family: Family = Family.connectivity
    direction: Direction = Direction.drop
    step: Duration = timedelta(minutes=5)
    lag: Duration = timedelta(0)
    detector: Literal["moving_median", "seasonal", "cusum", "threshold"] = "moving_median"
    window: Duration = timedelta(hours=24)
    warm_up: Duration = timedelta(hours=6)
    # drop signals: value/expected below `warning` (or `critical`) is anomalous.
    # rise signals: value above expected by `warning` (ratio mode: value/expected above it).
    warning: float = 0.99
    critical: float = 0.5
    mode: Literal["ratio", "delta"] = "ratio"
    min_prediction: float = 0.0
    min_count: int = 0
    min_duration: Duration = timedelta(0)
    recovery: Duration = timedelta(minutes=10)
    inpaint_max: Duration = timedelta(days=7)
    options: dict[str, Any] = Field(default_factory=dict)


class SourceConfig(_Strict):
    """How pollwatch talks to one observatory API (see docs/sources.md); `options` holds source-specific settings."""

    enabled: bool = True
    base_url: str | None = None
    timeout: Duration = Field(
        default=timedelta(seconds=20), description="longest wait for a connection or for the next bytes"
    )
    deadline: Duration = Field(
        default=timedelta(seconds=60),
        description="longest one attempt may take, connect to last byte (a server dripping bytes is cut off here)",
    )
    retries: int = Field(
        default=3, ge=0, le=10, description="retries after the first attempt (connection errors, 429, 5xx)"
    )
    backoff: float = Field(
        default=0.5, ge=0, description="first retry delay in seconds; doubles per attempt, with jitter"
    )
    max_backoff: float = Field(default=30.0, ge=0, description="longest wait between attempts, Retry-After included")
    rate_limit: float = Field(default=20.0, ge=0, description="requests per second per host (0 = unlimited)")
    max_concurrency: int = Field(default=10, ge=1, description="requests in flight at once")
    max_response: ByteSize | None = Field(
        default=None,
        gt=0,
        description="largest response accepted, e.g. 32MiB "
        "(default: the source's own, docs/sources.md); a larger one is a gap",
    )
    options: dict[str, Any] = Field(default_factory=dict)


class Provider(_Strict):
    asn: ASN
    name: str
    type: Literal["mobile", "fixed", "mixed"] = "mixed"
    regions: list[str] = Field(default_factory=list)
    upstreams: list[ASN] = Field(
        default_factory=list, description="ASNs of its transit providers (attribution: a single upstream)"
    )
    share: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="share of the country's address space (measured from the baseline when not given)",
    )


class Region(_Strict):
    # ISO 3166-2 (checked against the watch's country), or IODA's region id
    code: Annotated[str, AfterValidator(_entity_part)]
    name: str
    # other names sources use for it (IODA names regions after Natural Earth: Nur-Sultan is "Astana"); tried first
    aliases: list[str] = Field(default_factory=list)
    share: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="share of the country's address space (measured from the baseline when not given)",
    )


# The OONI test names the OONI API knows (ooni/backend's test_names list: api/tests/integ/test_private_api.py) and the
# newer nettests of ooni/spec (nettests/ts-0xx-*.md); `test_name=` with anything else matches no measurement at all.
OONI_TESTS = frozenset(
    {
        "bridge_reachability",
        "dash",
        "dns_consistency",
        "dnscheck",
        "facebook_messenger",
        "http_header_field_manipulation",
        "http_host",
        "http_invalid_request_line",
        "http_requests",
        "meek_fronted_requests_test",
        "multi_protocol_traceroute",
        "ndt",
        "psiphon",
        "riseupvpn",
        "signal",
        "stunreachability",
        "tcp_connect",
        "telegram",
        "tor",
        "torsf",
        "urlgetter",
        "vanilla_tor",
        "web_connectivity",
        "whatsapp",
        "openvpn",
        "echcheck",
        "browser_web",
        "sni_blocking",
        "tlsmiddlebox",
        "portfiltering",
        "quicping",
        "tcpping",
        "tlsping",
        "simplequicping",
        "dnsping",
    }
)


def _ooni_test(v: str) -> str:
    if v not in OONI_TESTS:
        import difflib

        near = difflib.get_close_matches(
            v.lower().replace("-", "_").replace(" ", "_"), sorted(OONI_TESTS), n=1, cutoff=0.6
        )
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise ValueError(
            f"{v!r} is not an OONI test name: {hint}for websites use 'web_connectivity'; apps: whatsapp, "
            "facebook_messenger, telegram, signal; circumvention: tor, vanilla_tor, torsf, psiphon, riseupvpn, "
            "openvpn (the full list is in docs/playbooks.md)"
        )
    return v


class Service(_Strict):
    name: Annotated[str, AfterValidator(_entity_part)]
    label: str | None = None  # how statements and alerts spell it ("WhatsApp"); default: the name
    test: Annotated[str, AfterValidator(_ooni_test)] = "web_connectivity"
    domains: list[str] = Field(default_factory=list)
    urls: list[str] = Field(default_factory=list)
    # web probe (docs/probes.md): a small fixed-size object whose fetch time shows throttling, and
    # what the real page looks like (a reply unlike it is a blockpage)
    transfer_url: str | None = None
    expect_status: list[int] = Field(default_factory=list, description="statuses of the real page; empty: any 2xx/3xx")
    expect_contains: str | None = Field(default=None, description="text the real page contains")


class Milestone(_Strict):
    name: str
    at: LocalTime = Field(description="local time: 'HH:MM' on election day, or 'YYYY-MM-DDTHH:MM'")


ContextEventType = Literal[
    "protest",
    "announcement",
    "political",
    "power_outage",
    "weather",
    "disaster",
    "cable_cut",
    "neighbour_outage",
    "radar_outage",
]


class ContextEvent(_Strict):
    """Something the coordinator recorded that bears on attribution (docs/attribution.md).

    `protest`, `announcement`, `political` count like milestones (for a government-directed
    cause); `power_outage`, `weather`, `disaster`, `cable_cut`, `neighbour_outage` count against
    it; `radar_outage` carries Cloudflare Radar's cause label in `cause`.
    """

    name: str
    type: ContextEventType
    at: LocalTime = Field(description="local time: 'HH:MM' on election day, or 'YYYY-MM-DDTHH:MM'")
    end: LocalTime | None = Field(default=None, description="local time, as `at`; default: `at` plus two hours")
    regions: list[str] = Field(default_factory=list)
    country: str | None = Field(default=None, description="for neighbour_outage: the other country")
    cause: str | None = Field(default=None, description="for radar_outage: Radar's outageCause label")
    source: str = "coordinator"


class Vantage(_Strict):
    name: Annotated[str, AfterValidator(_prefect_name)]
    work_pool: Annotated[str, AfterValidator(_prefect_name)]
    asn: ASN | None = None
    location: str | None = None
    resolver: str | None = Field(
        default=None, description="DNS resolver the web probe asks, 'address[:port]'; default the source's"
    )


class TickLimits(_Strict):
    """How long one tick may wait on the outside world: `deadline` of its phase's cadence, at most `max_deadline`.

    Past it, the observatories' requests still open are given up and what they should have
    brought is recorded as gaps, with a notice (docs/reliability.md)."""

    deadline: float = Field(
        default=0.5, gt=0, le=1, description="share of the phase's cadence a tick may spend collecting"
    )
    max_deadline: Duration = Field(
        default=timedelta(minutes=10), description="upper bound for slow cadences (daily baselining)"
    )

    def for_cadence(self, cadence: timedelta) -> timedelta:
        return min(cadence * self.deadline, self.max_deadline)


class Classification(_Strict):
    nationwide_share: float = Field(default=0.5, gt=0, le=1)
    recovery: Duration = timedelta(minutes=30)
    join_gap: Duration = timedelta(minutes=30)


class Attribution(_Strict):
    weights: dict[str, float] = Field(default_factory=dict)
    min_confidence: float = 0.5


class AlertRouting(_Strict):
    channel: str = "#pollwatch-alerts"
    ops_channel: str = "#pollwatch-ops"
    mention_critical: str | None = "@here"
    critical_severity: float = 5000.0
    min_severity: float = 0.0
    max_updates_per_hour: int = Field(default=6, ge=1)
    per_provider: bool = False  # alert on incidents confined to one provider (network level)?
    per_provider_asns: list[ASN] = Field(
        default_factory=list, description="providers opted in even when per_provider is off"
    )
    chart: bool = True  # upload a PNG of the signals against their baseline into the thread
    # Slack user ids (U…/W…) and user group ids (S…) who may confirm or change a cause or close an
    # incident as a false alarm from Slack (pollwatch.responders); empty: nobody may
    responders: list[str] = Field(default_factory=list)

    @field_validator("responders")
    @classmethod
    def _slack_ids(cls, v: list[str]) -> list[str]:
        for i, who in enumerate(v):
            if not re.fullmatch(r"[UWS][A-Z0-9]{2,20}", str(who)):
                raise ValueError(
                    f"responders[{i}] = {who!r} is not a Slack user id (U…, W…) or user group id (S…); "
                    "copy it from the member's profile (⋮ > Copy member ID) or the group's URL"
                )
        return v


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
            raise ValueError(f"unknown country {v!r}: expected an ISO 3166-1 alpha-2 code such as 'KZ'")
        return v.upper()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}: expected an IANA name such as 'Asia/Almaty'") from None
        return v

    @model_validator(mode="after")
    def _cross(self) -> "Playbook":
        for svc in self.services + self.circumvention:
            if not svc.name:
                raise ValueError("a service needs a name")
        return self


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
            local = datetime.fromisoformat(text)
            if local.tzinfo is None:
                local = local.replace(tzinfo=self.tz)
            return local.astimezone(timezone.utc)
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


# --- loading ---------------------------------------------------------------------------------

LineMap = dict[tuple[Any, ...], tuple[str, int]]
MAX_YAML_NODES = 100_000  # a real playbook has a few hundred
MAX_FILE_BYTES = 1 << 20  # the template is 4 KB, a 200-provider watch about 40 KB
# Limits on a playbook's strings (docs/playbooks.md): names and codes end up in Slack, file names,
# store columns and every simulated observation; longer free text has its own keys.
MAX_KEY = 100
MAX_NAME = 100  # name, code, and any other short value
MAX_TEXT = 2000  # description, urls, expect_contains, why, base_url, transfer_url
_LONG_TEXT_KEYS = {
    "description",
    "urls",
    "expect_contains",
    "why",
    "base_url",
    "transfer_url",
    "resolver",
    "domains",
    "options",
}


def _string_problem(path: Path, line: int, p: tuple[Any, ...], value: str, is_key: bool) -> str | None:
    """A NUL (PostgreSQL cannot store it) or a string over its limit, as `file:line: field: message`."""
    field = ".".join(str(x) for x in p) or "(top level)"
    if "\x00" in value:
        return f"{path}:{line}: {field}: contains a NUL character (\\0), which the store cannot keep"
    limit = (
        MAX_KEY if is_key else (MAX_TEXT if any(k in _LONG_TEXT_KEYS for k in p if isinstance(k, str)) else MAX_NAME)
    )
    if len(value) > limit:
        what = "key" if is_key else "value"
        return f"{path}:{line}: {field}: {what} is {len(value)} characters long; at most {limit} (docs/playbooks.md)"
    return None


def _load_yaml(path: Path) -> tuple[Any, LineMap]:
    """Safe-load YAML and remember the file:line of every key and list item."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise PlaybookError(
                [f"{path}:1: the file is larger than {MAX_FILE_BYTES // 1024} KB; a playbook takes a few KB"]
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlaybookError([f"{path}: file not found"]) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise PlaybookError([f"{path}:{line}: not UTF-8 (byte 0x{exc.object[exc.start]:02x})"]) from None
    except OSError as exc:
        raise PlaybookError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    for number, line in enumerate(text.splitlines(), 1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip():
            raise PlaybookError(
                [
                    f"{path}:{number}: a tab in the indentation: YAML indents with spaces only; replace the tab "
                    "with spaces (two per level, as in the template)"
                ]
            )
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise PlaybookError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    lines: LineMap = {}
    budget = [MAX_YAML_NODES]
    too_long: list[str] = []

    def walk(n: Any, p: tuple[Any, ...]) -> None:
        budget[0] -= 1
        if budget[0] < 0:  # aliases can make a small file expand to billions of nodes ("billion laughs")
            raise PlaybookError(
                [
                    f"{path}:1: the document expands to more than {MAX_YAML_NODES} values "
                    "(YAML aliases repeating aliases?); write the values out"
                ]
            )
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = k.value
                lines[p + (key,)] = (str(path), k.start_mark.line + 1)
                if isinstance(key, str) and (
                    bad := _string_problem(path, k.start_mark.line + 1, p + (key[:40],), key, True)
                ):
                    too_long.append(bad)
                    continue
                walk(v, p + (key,))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                lines[p + (i,)] = (str(path), v.start_mark.line + 1)
                walk(v, p + (i,))
        elif isinstance(n, yaml.ScalarNode) and isinstance(n.value, str) and n.tag == "tag:yaml.org,2002:str":
            if bad := _string_problem(path, n.start_mark.line + 1, p, n.value, False):
                too_long.append(bad)

    if node is not None:
        walk(node, ())
    if too_long:
        raise PlaybookError(too_long[:20])
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # pragma: no cover - compose already parsed it
        raise PlaybookError([f"{path}: not valid YAML: {exc}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PlaybookError(
            [f"{path}:1: expected a mapping of playbook fields at the top level, got {type(data).__name__}"]
        )
    return data, lines


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v) if k in base else v
        return out
    return copy.deepcopy(over)


def _where(lines: LineMap, loc: tuple[Any, ...], fallback: str) -> str:
    probe = tuple(loc)
    while probe:
        if probe in lines:
            f, ln = lines[probe]
            return f"{f}:{ln}"
        probe = probe[:-1]
    return f"{fallback}:1"


_DATE_ERRORS = ("date_from_datetime_parsing", "date_parsing", "date_type", "date_from_datetime_inexact")


def _problems(exc: ValidationError, lines: LineMap, fallback: str) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        field = ".".join(str(x) for x in loc) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling; allowed keys are in docs/playbooks.md)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] in _DATE_ERRORS:
            msg = f"expected a date YYYY-MM-DD (e.g. 2019-06-09), got {err.get('input')!r}"
        msg = msg.removeprefix("Value error, ")
        problems.append(f"{_where(lines, loc, fallback)}: {field}: {msg}")
    return problems


def _resolve_template(name: str, relative_to: Path) -> Path:
    candidates = [relative_to.parent / name, PLAYBOOKS_DIR / name, PLAYBOOKS_DIR / f"{name}.yaml"]
    for c in candidates:
        if c.is_file():
            return c
    return candidates[-1]


def load_playbook(path: str | Path) -> Playbook | Watch:
    """Load a template or a watch file; a watch is merged over the template it names."""
    path = Path(path)
    try:
        return _load_playbook(path)
    except RecursionError:  # a YAML alias that contains itself, or absurd nesting
        raise PlaybookError(
            [f"{path}:1: the document refers to itself (recursive YAML alias) or is nested too deeply"]
        ) from None


def _load_playbook(path: Path) -> Playbook | Watch:
    data, lines = _load_yaml(path)
    raw = path.read_bytes()
    template_name = data.get("template")
    merged, merged_lines = data, dict(lines)
    digest = hashlib.sha256(raw)
    if template_name is not None:
        if not isinstance(template_name, str):
            f, ln = lines.get(("template",), (str(path), 1))
            raise PlaybookError([f"{f}:{ln}: template: expected the template's file name, e.g. rapid-response.yaml"])
        tpath = _resolve_template(template_name, path)
        if not tpath.is_file():
            f, ln = lines.get(("template",), (str(path), 1))
            raise PlaybookError(
                [f"{f}:{ln}: template: no template {template_name!r} next to the watch or in {PLAYBOOKS_DIR}"]
            )
        tdata, tlines = _load_yaml(tpath)
        if "template" in tdata:
            f, ln = tlines[("template",)]
            raise PlaybookError([f"{f}:{ln}: template: a template cannot itself name a template"])
        digest.update(tpath.read_bytes())
        merged = _merge(tdata, data)
        merged_lines = {**tlines, **lines}
    is_watch = "country" in data or "election_date" in data
    model = Watch if is_watch else Playbook
    try:
        pb = model.model_validate(merged)
    except ValidationError as exc:
        raise PlaybookError(_problems(exc, merged_lines, str(path))) from None
    problems, warnings = _cross_checks(pb, merged_lines, str(path))
    if problems:
        raise PlaybookError(problems)
    pb.warnings = warnings
    if isinstance(pb, Watch):
        pb.source_file = str(path)
        pb.content_hash = digest.hexdigest()
    return pb


ISO_3166_2 = re.compile(r"^([A-Z]{2})-[A-Z0-9]{1,3}$")


def _cross_checks(pb: Playbook, lines: LineMap, fallback: str) -> tuple[list[str], list[str]]:
    """What needs more than one field: region codes against the country, the names that refer to the watch's regions,
    milestone and event times on the calendar, and phases that are already over (a warning).

    Returns (problems, warnings), each `file:line: field: message`.
    """
    problems: list[str] = []
    warnings: list[str] = []

    def at(loc: tuple[Any, ...], field: str, msg: str, out: list[str] = problems) -> None:
        out.append(f"{_where(lines, loc, fallback)}: {field}: {msg}")

    if not isinstance(pb, Watch):
        return problems, warnings
    cc = pb.country or ""
    current = {s.code for s in pycountry.subdivisions.get(country_code=cc) or []}
    withdrawn: list[str] = []
    for i, r in enumerate(pb.regions):
        m = ISO_3166_2.match(r.code)
        if r.code.isdigit() or r.code in current:
            continue  # IODA's own region id, or a current ISO 3166-2 code
        if m and m.group(1) == cc:
            # well formed: a code ISO has since replaced (Kazakhstan renumbered its regions in 2020)
            withdrawn.append(r.code)
            continue
        by_name = next(
            (
                s.code
                for s in pycountry.subdivisions.get(country_code=cc) or []
                if s.name.lower() in (r.name.lower(), r.code.lower())
            ),
            None,
        )
        hint = f"write {by_name!r}" if by_name else f"e.g. {sorted(current)[0]!r}" if current else "a code 'CC-XXX'"
        at(
            ("regions", i, "code"),
            f"regions.{i}.code",
            f"{r.code!r} is not an ISO 3166-2 code of {cc} (expected '{cc}-' and 1-3 capitals or digits, as "
            "pycountry lists them; "
            f"or IODA's numeric region id): {hint}",
        )
    if withdrawn and current:
        at(
            ("regions",),
            "regions",
            f"{', '.join(withdrawn)} are not among {cc}'s current ISO 3166-2 codes (pycountry "
            f"{getattr(pycountry, '__version__', '')}): fine for codes ISO has since withdrawn, else check the "
            "spelling",
            warnings,
        )
    known = {r.code for r in pb.regions} | {r.name for r in pb.regions} | {a for r in pb.regions for a in r.aliases}
    refs = [
        (("providers", i, "regions", j), f"providers.{i}.regions.{j}", name)
        for i, p in enumerate(pb.providers)
        for j, name in enumerate(p.regions)
    ]
    refs += [
        (("events", i, "regions", j), f"events.{i}.regions.{j}", name)
        for i, e in enumerate(pb.events)
        for j, name in enumerate(e.regions)
    ]
    for loc, field, name in refs:
        if pb.regions and name not in known:
            at(
                loc,
                field,
                f"{name!r} is none of the watch's regions: use a code or name from `regions` "
                f"({', '.join(r.code for r in pb.regions)})",
            )
    for kind, items in (("milestones", pb.milestones), ("events", pb.events)):
        for i, item in enumerate(items):
            for attr in ("at", "end"):
                value = getattr(item, attr, None)
                if value is None:
                    continue
                try:
                    pb.local_time(value)
                except (ValueError, OverflowError) as exc:
                    at((kind, i, attr), f"{kind}.{i}.{attr}", f"{value!r} is not a time on the calendar ({exc})")
    now = datetime.now(timezone.utc)
    try:
        resolved = pb.resolved_phases()
    except (ValueError, OverflowError) as exc:
        at(("phases",), "phases", f"the phases cannot be placed around election day {pb.election_date} ({exc})")
        resolved = []
    over = [(i, p) for i, p in enumerate(resolved) if p.end <= now]
    if over and len(over) == len(resolved):
        at(
            ("election_date",),
            "phases",
            f"every phase ended (the last on {resolved[-1].end:%Y-%m-%d %H:%M} UTC): a schedule "
            "would run no tick; use `pollwatch replay` for past data, or check election_date",
            warnings,
        )
    else:
        for i, phase in over:
            at(
                ("phases", i),
                f"phases.{i}",
                f"phase {phase.name!r} ended {phase.end:%Y-%m-%d %H:%M} UTC: a schedule runs none of its ticks",
                warnings,
            )
    return problems, warnings


def load_watch(path: str | Path) -> Watch:
    """Load a watch file (it must name a country and an election date)."""
    pb = load_playbook(path)
    if not isinstance(pb, Watch):
        raise PlaybookError([f"{path}:1: a watch needs 'country' and 'election_date' (this looks like a template)"])
    return pb


_WATCH_CACHE: dict[tuple[str, ...], Watch] = {}


def load_watch_cached(path: str | Path) -> Watch:
    """`load_watch`, remembered while the watch file and its template have the same content.

    A tick loads its watch, and the audit hooks load it again for its hash; parsing a
    200-provider watch with line numbers takes about a second, reading the files takes nothing.
    Each call returns its own (shallow) copy.
    """
    p = Path(path).resolve()
    raw = p.read_bytes()
    key = [str(p), hashlib.sha256(raw).hexdigest()]
    template = re.search(rb"^template:[ \t]*[\"']?([^\"'\s#]+)", raw, re.M)
    if template:
        t = _resolve_template(template.group(1).decode("utf-8", "replace"), p)
        key.append(hashlib.sha256(t.read_bytes()).hexdigest() if t.is_file() else "-")
    cached = _WATCH_CACHE.get(tuple(key))
    if cached is None:
        cached = load_watch(path)
        if len(_WATCH_CACHE) > 64:
            _WATCH_CACHE.clear()
        _WATCH_CACHE[tuple(key)] = cached
    return cached.model_copy()


def find_watch(name_or_path: str | Path) -> Path:
    """Accept a path or a bare watch name (`kz-2019-presidential`) from playbooks/watches/."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    for cand in (PLAYBOOKS_DIR / "watches" / f"{name_or_path}.yaml", PLAYBOOKS_DIR / "watches" / str(name_or_path)):
        if cand.is_file():
            return cand
    raise PlaybookError(
        [f"{name_or_path}: no such watch file (give a path, or a name from {PLAYBOOKS_DIR / 'watches'})"]
    )


def watch_json(watch: Watch) -> str:
    """A canonical JSON of the watch (for hashing, passing to flows and recording)."""
    return json.dumps(watch.model_dump(mode="json"), sort_keys=True)
