"""IODA v2's payloads: the envelope, signal series, region lists, outage record codes, and the limits IODA sets.

Shapes as InetIntel/ioda-api writes them (see pollwatch.sources.ioda); everything here is pure parsing.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pollwatch.sources.base import ShapeError

DATASOURCE_SIGNALS = {"bgp": "bgp", "ping-slash24": "active_probing", "merit-nt": "telescope", "gtr": "gtr"}
DEFAULT_DATASOURCES = ("bgp", "ping-slash24", "merit-nt")
OUTAGES_PAGE = 500  # IODA's default `limit` for /outages/alerts and /outages/events
OUTAGES_PAGES = 4  # pages read per request before a notice says the rest were left
COUNTRY_ONLY = {"gtr"}  # Google's traffic exists per country only (IODA has no gtr series for regions or networks)
MAX_RANGE = timedelta(days=90)  # IODA refuses >= 100 days; keep a margin
REGION_LIST_TTL = 24 * 3600.0  # seconds a country's IODA region list is reused
# (base URL, country) -> (fetched, name -> code)
_REGION_LISTS: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}
_GENERIC_WORDS = {
    "oblysy",
    "oblast",
    "oblys",
    "province",
    "region",
    "state",
    "governorate",
    "prefecture",
    "county",
    "district",
    "of",
    "the",
}


def region_name_key(name: str) -> str:
    """A region name compared loosely: no accents or case, no words like 'oblysy' or 'province'."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = [w for w in re.split(r"[^a-z0-9]+", folded) if w and w not in _GENERIC_WORDS]
    return "".join(words)


def parse_regions(payload: Any) -> dict[str, str]:
    """IODA region entities (`/entities/query`) as {loose name: code}."""
    data = _envelope_data(payload)
    if data is None:
        return {}
    if not isinstance(data, list):
        raise ShapeError(f"entities: 'data' should be a list of entities, got {type(data).__name__}")
    out: dict[str, str] = {}
    for item in data:
        if not isinstance(item, dict) or item.get("code") in (None, "") or not isinstance(item.get("name"), str):
            raise ShapeError("entities: every entity needs a 'code' and a 'name'")
        out.setdefault(region_name_key(item["name"]), str(item["code"]))
    return out


class IodaSeries(BaseModel):
    """One series of a /signals/raw response."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    entityType: str
    entityCode: str
    datasource: str
    subtype: str | None = None
    from_: int = Field(alias="from")
    until: int | None = None
    step: int = Field(gt=0)
    nativeStep: int | None = None
    values: list[float | None]


def _envelope_data(payload: Any) -> Any:
    if not isinstance(payload, dict) or "data" not in payload:
        keys = sorted(payload)[:6] if isinstance(payload, dict) else type(payload).__name__
        raise ShapeError(f"expected IODA's envelope with a 'data' field, got {keys}")
    if payload.get("error"):
        raise ShapeError(f"IODA reported an error: {str(payload['error'])[:200]}")
    return payload["data"]


def parse_signals(payload: Any) -> list[IodaSeries]:
    """The series of a /signals/raw response (data is a list per entity of lists of series)."""
    data = _envelope_data(payload)
    if data is None:
        return []
    if not isinstance(data, list):
        raise ShapeError(f"'data' should be a list of per-entity series lists, got {type(data).__name__}")
    out = []
    for group in data:
        items = group if isinstance(group, list) else [group]
        for item in items:
            try:
                out.append(IodaSeries.model_validate(item))
            except ValidationError as exc:
                err = exc.errors()[0]
                raise ShapeError(f"series field {'.'.join(str(x) for x in err['loc'])}: {err['msg']}") from None
    return out


def _ts(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None


def _num(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def _record_entity(item: dict[str, Any]) -> tuple[Any, str | None, Any]:
    """(type, code, name) of an outage record's `entity` object (alerts; events in IODA's own format): the type
    may itself be an object `{type: ...}`; a missing code is None."""
    ent = item.get("entity")
    if not isinstance(ent, dict):
        return None, None, None
    etype = ent.get("type")
    if isinstance(etype, dict):
        etype = etype.get("type")
    code = str(ent.get("code")) if ent.get("code") is not None else None
    return etype, code, ent.get("name")


def _record_code(item: Any, kind: str) -> str | None:
    """The entity code an outage record is about (alerts: `entity.code`; events: `location` "type/code")."""
    if not isinstance(item, dict):
        return None
    if kind == "events" and "location" in item:
        return str(item.get("location")).partition("/")[2] or None
    return _record_entity(item)[1]


def _code_chunks(group: list[tuple[Any, str, str]], size: int) -> list[list[tuple[Any, str, str]]]:
    """Entries split so that each part names at most `size` distinct codes (an entity two watches track goes once)."""
    parts: list[list[tuple[Any, str, str]]] = []
    codes: set[str] = set()
    for entry in group:
        if entry[1] not in codes and len(codes) >= size:
            parts, codes = parts, set()
        if not codes:
            parts.append([])
        codes.add(entry[1])
        parts[-1].append(entry)
    return parts


def _time_chunks(start: datetime, end: datetime, size: timedelta) -> list[tuple[datetime, datetime]]:
    out = []
    t = start
    while t < end:
        out.append((t, min(end, t + size)))
        t += size
    return out
