"""What every model leans on: times in UTC and their notation, deterministic ids, and the bounds on outside text."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any


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
