"""What goes into the detectors: observations of a signal for an entity (country, region, network, service), the
gaps where a source was silent, observatories' own outage records, operator notices, and baselines."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pollwatch.models.common import MAX_HASH, MAX_LABEL, MAX_NAME, MAX_REQUEST, no_nul, outside_message, utc


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
