"""What comes out of them: anomalies (a series beyond its baseline), incidents (anomalies grouped, classified and
attributed, with their evidence, scope, responders' actions and recurring pattern) and the events that change them."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from pollwatch.models.common import iso
from pollwatch.models.observations import Entity


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

    regions: list[str] = Field(default_factory=list)  # the watch's region codes (ISO 3166-2)
    asns: list[int] = Field(default_factory=list)
    providers: list[str] = Field(default_factory=list)  # the providers' names, in the order of `asns`
    services: list[str] = Field(default_factory=list)  # the watch's service names
    signals: list[str] = Field(default_factory=list)  # the signals in agreement
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
    tentative: bool = False  # a lone pair whose second episode is in progress (confirmed or split off at its end)

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
            "tentative": self.tentative,
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
    def first_start(self) -> datetime:
        """When the incident began: a recurring incident's `start` is its latest episode's, its first episode's is
        kept in `episodes`."""
        return min([self.start] + [e.start for e in self.episodes])

    def spans(self) -> list[tuple[datetime, datetime | None]]:
        """(start, end) of each episode of a recurring incident (the latest is the incident's own), or of the
        incident."""
        return [(e.start, e.end) for e in self.episodes[:-1]] + [(self.start, self.end)]

    def during(self, since: datetime | None, until: datetime | None) -> bool:
        """Whether the incident, or one of a recurring incident's episodes, overlaps [since, until)."""
        return any((until is None or a < until) and (since is None or b is None or b >= since) for a, b in self.spans())

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
