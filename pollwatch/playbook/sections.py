"""The sections of a playbook: phases, signals, sources, providers, regions, services, milestones, context
events, vantages, tick limits, classification, attribution and alert routing."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ByteSize,
    Field,
    field_validator,
    model_validator,
)

from pollwatch.models import Direction, Family
from pollwatch.timeutil import format_duration
from pollwatch.playbook.fields import ASN, Duration, LocalTime, _Strict, _entity_part, _ooni_test, _prefect_name


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
    # one network (or region) alone is nationwide only when it holds this much of the country's address space
    single_network_share: float = Field(default=0.8, gt=0, le=1)
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
