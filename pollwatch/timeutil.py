"""Times, durations and clocks: the one ISO 8601 time parser, the playbook's duration notation (`-28d`, `5m`,
`1h30m`) and tick grids."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any

_DURATION = re.compile(
    r"^\s*(?:E\s*)?(?P<sign>[+-])?\s*(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?"
    r"(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?\s*$"
)


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse `-28d`, `E+3d`, `5m`, `1h30m`, `90s`, `2w` (or a number of seconds) into a timedelta."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise ValueError(f"expected a duration such as '5m', '-28d' or '1h30m', got {text!r}")
    if isinstance(text, (int, float)):
        try:
            return timedelta(seconds=float(text))
        except (OverflowError, ValueError):  # inf, nan, or beyond timedelta's range
            raise ValueError(f"duration {text!r} is not a finite number of seconds within range") from None
    match = _DURATION.match(str(text))
    if not match or not any(match.group(k) for k in "wdhms"):
        raise ValueError(f"expected a duration such as '5m', '-28d' or '1h30m', got {text!r}")
    parts = {k: int(match.group(k) or 0) for k in "wdhms"}
    try:
        delta = timedelta(weeks=parts["w"], days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"])
    except OverflowError:
        raise ValueError(f"duration {text!r} is out of range (at most 999999999 days)") from None
    return -delta if match.group("sign") == "-" else delta


def format_duration(delta: timedelta) -> str:
    """The inverse of parse_duration, e.g. `-1d`, `5m`, `1h30m`."""
    total = int(delta.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, total = divmod(total, size)
        if n:
            out += f"{n}{unit}"
    return sign + (out or "0s")


def utc_now() -> datetime:
    """Now, aware UTC."""
    return datetime.now(timezone.utc)


def parse_time(text: str | date | datetime, zone: tzinfo = timezone.utc) -> datetime:
    """Parse an ISO 8601 time (or take a date or datetime) into a plain aware UTC datetime: pollwatch's one time
    parser (flow parameters and Prefect's run times go through it too).

    A time without a zone is read in `zone` (UTC unless given, such as a watch's local zone); a bare
    date means its midnight. The standard library's parser reads what ISO 8601 writes ('Z', offsets,
    fractions, week dates, the basic format) at C speed: adapters call this once per row.
    """
    if isinstance(text, datetime):
        dt = text
    elif isinstance(text, date):
        dt = datetime(text.year, text.month, text.day)
    else:
        try:
            dt = datetime.fromisoformat(str(text).strip())
        except ValueError:
            raise ValueError(f"not an ISO 8601 time: {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone)
    dt = dt.astimezone(timezone.utc)
    if type(dt) is not datetime:  # a subclass such as Prefect's DateTime, whose sum with a timedelta is naive
        dt = datetime(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond, tzinfo=timezone.utc)
    return dt


def parse_time_or_none(value: Any) -> datetime | None:
    """`parse_time` for an optional field: None when the value is empty or not an ISO 8601 time."""
    if value is None or value == "":
        return None
    try:
        return parse_time(value)
    except (ValueError, TypeError, OverflowError):
        return None


def floor_time(dt: datetime, step: timedelta) -> datetime:
    """Round `dt` down to a multiple of `step` since the Unix epoch."""
    seconds = int(step.total_seconds())
    ts = int(dt.timestamp())
    return datetime.fromtimestamp(ts - ts % seconds, tz=timezone.utc)


def tick_grid(start: datetime, end: datetime, cadence: timedelta) -> list[datetime]:
    """Tick times from `start` (rounded up to the cadence) to `end` inclusive."""
    first = floor_time(start, cadence)
    if first < start:
        first += cadence
    ticks = []
    t = first
    while t <= end:
        ticks.append(t)
        t += cadence
    return ticks
