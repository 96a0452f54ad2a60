"""Domain models passed between pollwatch's stages.

These are plain pydantic models: what a Prefect task takes and returns, what the interchange
formats (docs/formats.md) serialize, and what the store persists. The store's SQL tables live in
`pollwatch.store`; they carry these models' fields but are not these classes.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


def utc(dt: datetime) -> datetime:
    """Return `dt` as an aware UTC datetime; naive datetimes are refused."""
    if dt.tzinfo is None:
        raise ValueError("datetime has no time zone; write it in ISO 8601 with a zone, e.g. 2019-06-09T05:00:00Z")
    return dt.astimezone(timezone.utc)


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 in UTC with a trailing Z, the interchange format's time notation."""
    if dt is None:
        return None
    d = dt.astimezone(timezone.utc)
    # not strftime("%Y"): it does not pad years before 1000, which readers then refuse
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}Z"


def stable_id(*parts: Any, length: int = 16) -> str:
    """A short deterministic id from its parts (same inputs, same id: replays stay idempotent)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return digest[:length]


class IncidentKind(StrEnum):
    nationwide_outage = "nationwide_outage"
    regional_outage = "regional_outage"
    network_outage = "network_outage"
    service_block = "service_block"
    circumvention_block = "circumvention_block"
    throttling = "throttling"


class Cause(StrEnum):
    government_directed = "government_directed"
    power_outage = "power_outage"
    cable_cut = "cable_cut"
    weather_or_disaster = "weather_or_disaster"
    technical = "technical"
    unknown = "unknown"


class Family(StrEnum):
    """What a signal measures; anomalies of one family group into one incident."""

    connectivity = "connectivity"  # bgp, active probing, telescope, connectivity index, diffscan
    service = "service"  # a named service's test failure rate
    circumvention = "circumvention"  # a circumvention tool's test failure rate
    performance = "performance"  # latency / transfer time


class Entity(BaseModel):
    """What a series is about: a country, a region, a network (ASN) or a service on a network."""

    model_config = ConfigDict(frozen=True)

    country: str
    region: str | None = None
    asn: int | None = None
    service: str | None = None

    @property
    def key(self) -> str:
        return entity_key(self.country, self.region, self.asn, self.service)

    @property
    def level(self) -> str:
        if self.service is not None:
            return "service"
        if self.asn is not None:
            return "asn"
        if self.region is not None:
            return "region"
        return "country"


def entity_key(country: str, region: str | None, asn: int | None, service: str | None) -> str:
    """The canonical text key of an entity, e.g. `KZ`, `KZ/region=KZ-ALA`, `KZ/asn=9198/service=whatsapp`."""
    key = country
    if region is not None:
        key += f"/region={region}"
    if asn is not None:
        key += f"/asn={asn}"
    if service is not None:
        key += f"/service={service}"
    return key


# Limits on an observation's strings (docs/formats.md). They fit the store's columns (the entity
# key `KZ/region=…/asn=…/service=…` stays within VARCHAR(255)) and keep one bad line from
# making the store or a simulation grow without bound.
MAX_NAME = 64  # source, signal
MAX_LABEL = 100  # region, service
MAX_REQUEST = 2048  # provenance: the request URL (longer ones are cut)
MAX_HASH = 128  # provenance: the payload hash


def no_nul(v: str | None) -> str | None:
    """Refuse NUL: PostgreSQL cannot store it in text, so it would fail every later write."""
    if v is not None and "\x00" in v:
        raise ValueError("contains a NUL character (\\u0000), which the store cannot keep")
    return v


MAX_MESSAGE = 2000  # a notice's message, a gap's reason: they carry servers' words


def outside_message(v: str) -> str:
    """Keep a notice or gap that quotes a server: NULs (PostgreSQL cannot store them) become U+FFFD and
    the text is cut to MAX_MESSAGE, rather than refused (an operator notice must never fail the tick)."""
    v = v.replace("\x00", "\ufffd")
    return v if len(v) <= MAX_MESSAGE else v[: MAX_MESSAGE - 1] + "…"


class Provenance(BaseModel):
    """Where an observation came from: the request that fetched it, when, and a hash of the payload."""

    request: str | None = None
    fetched_at: datetime | None = None
    payload_hash: str | None = Field(default=None, max_length=MAX_HASH)

    _nul = field_validator("request", "payload_hash")(no_nul)

    @field_validator("request")
    @classmethod
    def _cut_request(cls, v: str | None) -> str | None:
        # a web probe's request names all its URLs: keep the start rather than lose the observation
        return v if v is None or len(v) <= MAX_REQUEST else v[: MAX_REQUEST - 1] + "…"


class Observation(BaseModel):
    """One value of one signal for one entity at one time. `value=None` means no data (never an outage)."""

    time: datetime
    source: str = Field(min_length=1, max_length=MAX_NAME)
    signal: str = Field(min_length=1, max_length=MAX_NAME)
    country: str = Field(description="ISO 3166-1 alpha-2")
    region: str | None = Field(default=None, max_length=MAX_LABEL)
    asn: int | None = Field(default=None, ge=0, lt=2**32, description="a 32-bit AS number")
    service: str | None = Field(default=None, max_length=MAX_LABEL)
    value: float | None = None
    count: int | None = Field(default=None, ge=0, description="measurements behind a rate")
    provenance: Provenance | None = None

    @field_validator("time")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return utc(v)

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("value must be a finite number or null (no data)")
        return v

    @field_validator("country")
    @classmethod
    def _country_upper(cls, v: str) -> str:
        v = v.upper()
        if len(v) != 2 or not ("A" <= v[0] <= "Z" and "A" <= v[1] <= "Z"):
            raise ValueError(f"expected an ISO 3166-1 alpha-2 country code such as 'KZ', got {v[:20]!r}")
        return v

    _nul = field_validator("source", "signal", "region", "service")(no_nul)

    @property
    def entity(self) -> Entity:
        return Entity(country=self.country, region=self.region, asn=self.asn, service=self.service)

    @property
    def entity_key(self) -> str:
        return entity_key(self.country, self.region, self.asn, self.service)

    @property
    def series_key(self) -> str:
        return series_key(self.source, self.signal, self.entity_key)


def series_key(source: str, signal: str, entity: str) -> str:
    return f"{source}:{signal}:{entity}"


class Gap(BaseModel):
    """A span where a source should have produced data for an entity and did not."""

    source: str
    signal: str | None = None
    entity: str
    start: datetime
    end: datetime
    reason: str

    _outside = field_validator("reason")(outside_message)


class Corroboration(BaseModel):
    """An outage record published by an observatory (an alert, an event, an annotation).

    Kept with the observatory's own labels (`level`, `cause`, `outage_type`, `status`) so that
    attribution can cite them; `entity` is pollwatch's entity key when the record could be
    mapped to the watch's country, region or network.
    """

    source: str
    kind: str  # ioda_alert | ioda_event | radar_annotation | radar_anomaly
    id: str
    country: str
    entity: str
    entity_type: str | None = None  # country | region | asn | ...
    entity_code: str | None = None
    datasource: str | None = None
    start: datetime
    end: datetime | None = None
    level: str | None = None
    status: str | None = None
    cause: str | None = None
    outage_type: str | None = None
    score: float | None = None
    value: float | None = None
    expected: float | None = None
    description: str | None = None
    url: str | None = None
    provenance: Provenance | None = None


class NoticeLevel(StrEnum):
    info = "info"
    warning = "warning"
    error = "error"


class Notice(BaseModel):
    """A message for operators (source down, data gap, vantage offline), never a shutdown alert."""

    time: datetime
    level: NoticeLevel = NoticeLevel.warning
    source: str
    message: str
    watch: str | None = None

    _outside = field_validator("message")(outside_message)


class Baseline(BaseModel):
    """Expected value and spread of one series, with the window it came from and its coverage."""

    source: str
    signal: str
    entity: str
    expected: float | None
    spread: float | None
    window_start: datetime
    window_end: datetime
    points: int
    coverage: float = Field(description="share of the window's expected points that had data")
    usable: bool
    reason: str = ""
    hours_covered: int | None = Field(
        default=None, description="hours of the week (or of the day, for windows under 7 days) with data"
    )
    hours_possible: int | None = None
    detector: str | None = None


class Direction(StrEnum):
    drop = "drop"  # value below baseline (connectivity lost)
    rise = "rise"  # value above baseline (failure rate or latency up)


class Anomaly(BaseModel):
    """A series beyond its baseline's thresholds, from start to end (None while open)."""

    id: str
    watch: str
    source: str
    signal: str
    family: Family
    entity: Entity
    direction: Direction
    start: datetime
    end: datetime | None = None
    detected_at: datetime
    level: str = "critical"  # warning | critical
    expected: float | None = None
    observed: float | None = None
    depth: float = 0.0  # fraction below (drop) or relative rise above (rise) the expectation
    severity: float = 0.0  # sum of depth% x minutes
    points: int = 0
    evidence: dict[str, Any] = Field(default_factory=dict)


class AnomalyEvent(BaseModel):
    """A change to an anomaly at a tick: opened, updated (deeper or longer) or closed."""

    tick: datetime
    change: str  # opened | updated | closed
    anomaly: Anomaly


class Evidence(BaseModel):
    """One reason behind an attribution, with the numbers that support it."""

    name: str
    supports: Cause
    weight: float
    detail: str
    numbers: dict[str, Any] = Field(default_factory=dict)


# Severity for people: 0-100, ten points per factor of ten of IODA's score (docs/detection.md, docs/alerts.md)
SEVERITY_BANDS = ((70, "critical"), (40, "major"), (0, "minor"))


def severity_index(score: float) -> int:
    """IODA's event score (drop % x minutes per source, multiplied across sources) on a 0-100 scale:
    10 x log10(1 + score). A network 95 % down for 30 min on one signal is 34 (minor); a block of a service
    on two networks for 4 h is 46 (major); the whole country 95 % down for an hour on three signals is 100."""
    return int(min(100, round(10 * math.log10(1 + max(score, 0.0)))))


def severity_band(index: int) -> str:
    """minor (under 40), major (40-69) or critical (70 and more)."""
    return next(name for floor, name in SEVERITY_BANDS if index >= floor)


class Scope(BaseModel):
    """What an incident covers: everything it has covered so far (`recovered`: the parts back to normal)."""

    regions: list[str] = Field(default_factory=list)
    asns: list[int] = Field(default_factory=list)
    providers: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)
    signals: list[str] = Field(default_factory=list)
    share: float = 0.0  # share of the country's address space affected (its largest so far)
    network_types: list[str] = Field(default_factory=list)  # mobile / fixed
    # providers (AS<n>), regions and services of the scope back to normal
    recovered: list[str] = Field(default_factory=list)


class Episode(BaseModel):
    """One episode of a recurring incident (pollwatch.recurring): when it started and ended, in UTC and local time."""

    start: datetime
    end: datetime | None = None
    kind: IncidentKind
    local_start: str  # HH:MM in the watch's time zone
    local_end: str | None = None
    note: str = ""  # e.g. came at another time than usual
    overran: bool = False  # ran past the pattern's usual end (noted once)

    def to_public(self) -> dict[str, Any]:
        return {
            "start": iso(self.start),
            "end": iso(self.end),
            "kind": self.kind.value,
            "local_start": self.local_start,
            "local_end": self.local_end,
            "note": self.note,
        }


class Pattern(BaseModel):
    """The usual local window and period of a recurring incident's episodes."""

    local_start: str
    local_end: str | None = None
    period: str  # daily | every N days | irregular days
    period_days: float = 1.0
    timezone: str
    episodes: int  # episodes seen (the incident's `episodes` list keeps the last few hundred)
    missed: int = 0  # expected episodes of a daily pattern that did not come
    missed_dates: list[str] = Field(default_factory=list)

    @property
    def window(self) -> str:
        return f"{self.local_start}-{self.local_end or '?'} local"

    def to_public(self) -> dict[str, Any]:
        return {
            "local_start": self.local_start,
            "local_end": self.local_end,
            "period": self.period,
            "period_days": self.period_days,
            "timezone": self.timezone,
            "episodes": self.episodes,
            "missed": self.missed,
            "missed_dates": self.missed_dates,
        }


class Incident(BaseModel):
    """Anomalies grouped into one event, classified and attributed."""

    id: str
    watch: str
    country: str
    family: Family
    kind: IncidentKind
    scope: Scope = Field(default_factory=Scope)
    start: datetime
    end: datetime | None = None
    detected_at: datetime
    updated_at: datetime
    status: str = "open"  # open | resolved
    severity: float = 0.0
    depth: float = 0.0
    cause: Cause = Cause.unknown
    cause_confidence: float = 0.0
    evidence: list[Evidence] = Field(default_factory=list)
    anomaly_ids: list[str] = Field(default_factory=list)
    kind_history: list[dict[str, Any]] = Field(default_factory=list)
    override: dict[str, Any] | None = None
    # what responders did from Slack (pollwatch.responders): one dict per action, with its idempotency key
    responses: list[dict[str, Any]] = Field(default_factory=list)
    version: int = 1
    episodes: list[Episode] = Field(default_factory=list)  # a recurring incident's episodes (pollwatch.recurring)
    pattern: Pattern | None = None

    @property
    def acknowledged_by(self) -> list[dict[str, Any]]:
        """The responders who acknowledged the incident, first one first."""
        return [r for r in self.responses if r.get("action") == "acknowledge"]

    @property
    def false_alarm(self) -> dict[str, Any] | None:
        """The responder's word that this is not an outage (who, why, when), or None."""
        return next((r for r in self.responses if r.get("action") == "false_alarm"), None)

    @property
    def regions(self) -> list[str]:
        return self.scope.regions

    @property
    def severity_index(self) -> int:
        return severity_index(self.severity)

    @property
    def severity_band(self) -> str:
        return severity_band(self.severity_index)

    @property
    def asns(self) -> list[int]:
        return self.scope.asns

    @property
    def services(self) -> list[str]:
        return self.scope.services

    def to_public(self) -> dict[str, Any]:
        """The incident JSON of docs/formats.md."""
        return {
            "id": self.id,
            "watch": self.watch,
            "kind": self.kind.value,
            "country": self.country,
            "regions": self.scope.regions,
            "asns": self.scope.asns,
            "providers": self.scope.providers,
            "services": self.scope.services,
            "signals": self.scope.signals,
            "share": round(self.scope.share, 4),
            "start": iso(self.start),
            "end": iso(self.end),
            "detected_at": iso(self.detected_at),
            "status": self.status,
            "severity": round(self.severity, 2),
            "severity_index": self.severity_index,
            "severity_band": self.severity_band,
            "depth": round(self.depth, 4),
            "cause": self.cause.value,
            "cause_confidence": round(self.cause_confidence, 3),
            "evidence": [e.detail for e in self.evidence],
            "kind_history": self.kind_history,
            "override": self.override,
            "episodes": [e.to_public() for e in self.episodes],
            "pattern": self.pattern.to_public() if self.pattern else None,
            "acknowledged_by": [{k: r.get(k) for k in ("by", "user_id", "at")} for r in self.acknowledged_by],
            "false_alarm": {k: self.false_alarm.get(k) for k in ("by", "user_id", "why", "at")}
            if self.false_alarm
            else None,
        }


class IncidentEvent(BaseModel):
    """A change to an incident at a tick; each one may become an alert."""

    tick: datetime
    change: str  # opened | updated | resolved
    reasons: list[str] = Field(default_factory=list)
    incident: Incident


class AlertState(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"


class Alert(BaseModel):
    """One notification about an incident event to one destination (kept in the outbox)."""

    id: str
    watch: str
    incident_id: str
    event: str  # start | update | end
    sequence: int
    destination: str
    idempotency_key: str
    created_at: datetime
    text: str
    payload: dict[str, Any] = Field(default_factory=dict)
    state: AlertState = AlertState.pending
    attempts: int = 0
