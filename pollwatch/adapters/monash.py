"""Monash IP Observatory index files per county/state -> Observations (format `monash`).

Columns: iso, [id_1], name_1 (province/state), [id_2, name_2 (county)], a time, an index, [lat, lon].
The time comes in one of three variants:
- `time_e`: the epoch of the LOCAL wall clock (not UTC), read as a naive local time and converted
  with the IANA time zone given (`tz`; DST, if any, is handled);
- `time_e_utc`: a UTC epoch;
- `time_local` ('2019-11-16 14:00' or ISO) with `timezone_offset` ('+03:30', '-4', '3.5' hours).
The index: `connectivity` (signal `connectivity_index`) and/or `latency` / `latency_index`
(signal `latency_index`, a rise means slower). Scales: the observatory publishes 0..100 and
0..10 indices; `scale="auto"` reads a file whose values never exceed 10 as 0..10 and multiplies
it by 10, so a playbook's thresholds (`min_prediction: 10`) mean the same for both; `scale=10`
or `scale=100` says it explicitly. Each county (or state, when the file has no counties) is a
region named `<name_1>/<name_2>` (or `<name_1>`), source `monash`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo


from pollwatch.adapters.common import Progress, csv_rows, epoch, need, number, provenance
from pollwatch.jsonl import FormatError
from pollwatch.models import Observation
from pollwatch.timeutil import parse_time
from pollwatch.words import country_code

SIGNAL = "connectivity_index"
LATENCY_SIGNAL = "latency_index"
SOURCE = "monash"


def local_epoch_to_utc(epoch_s: int | float, tz: ZoneInfo) -> datetime:
    naive = datetime.fromtimestamp(epoch_s, tz=timezone.utc).replace(tzinfo=None)
    return naive.replace(tzinfo=tz).astimezone(timezone.utc)


_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-]?)(\d{1,2})(?::?(\d{2}))?$")


def parse_offset(text: str) -> timedelta:
    """'+03:30', '-04:00', '+0330', 'UTC+3', '3.5' (hours) -> a UTC offset."""
    t = text.strip()
    try:
        hours = float(t)
        if abs(hours) <= 14:
            return timedelta(hours=hours)
    except ValueError:
        pass
    m = _OFFSET.match(t.upper())
    if not m:
        raise ValueError(f"not a UTC offset: {text[:20]!r}")
    sign = -1 if m.group(1) == "-" else 1
    off = timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
    if off > timedelta(hours=14):
        raise ValueError(f"not a UTC offset: {text[:20]!r}")
    return sign * off


def _time(path: Path, line: int, row: dict[str, str], zone: ZoneInfo | None) -> datetime:
    if (row.get("time_e_utc") or "").strip():
        return epoch(path, line, row, "time_e_utc")
    if (row.get("time_local") or "").strip():
        text = need(path, line, row, "time_local")
        try:
            off = parse_offset(need(path, line, row, "timezone_offset"))
            return parse_time(text.replace("/", "-"), zone=timezone(off))
        except ValueError as exc:
            raise FormatError(f"{path}:{line}: time_local/timezone_offset: {exc}") from None
    if (row.get("time_e") or "").strip():
        if zone is None:
            raise FormatError(
                f"{path}:{line}: time_e is the local wall clock: give the time zone (--tz, or the watch's)"
            )
        v = number(path, line, row, "time_e", allow_na=False)
        return local_epoch_to_utc(v, zone)  # type: ignore[arg-type]
    raise FormatError(f"{path}:{line}: no time: expected time_e_utc, time_local with timezone_offset, or time_e")


def read_monash(
    path: str | Path, tz: str | None = None, scale: str | int = "auto", progress: Progress | None = None
) -> list[Observation]:
    """Observations from a Monash index CSV (any of the time variants above)."""
    path = Path(path)
    zone = ZoneInfo(tz) if tz else None
    prov = provenance(path)
    rows: list[tuple[datetime, str, str, str, float | None]] = []
    codes: dict[str, str] = {}
    columns: list[tuple[str, str]] = []
    for line, row in csv_rows(path, progress, required=("iso", "name_1")):
        if not columns:
            columns = [
                (c, sig)
                for c, sig in (
                    ("connectivity", SIGNAL),
                    ("connectivity_index", SIGNAL),
                    ("latency", LATENCY_SIGNAL),
                    ("latency_index", LATENCY_SIGNAL),
                )
                if c in row
            ]
            if not columns:
                raise FormatError(f"{path}:1: no index column: expected connectivity and/or latency (or *_index)")
        iso3 = need(path, line, row, "iso")
        cc = codes.get(iso3) or codes.setdefault(iso3, country_code(iso3) or "")
        if not cc:
            raise FormatError(f"{path}:{line}: iso: unknown country {iso3!r}")
        region = need(path, line, row, "name_1") + (
            f"/{row['name_2'].strip()}" if (row.get("name_2") or "").strip() else ""
        )
        t = _time(path, line, row, zone)
        for col, sig in columns:
            rows.append((t, region, cc, sig, number(path, line, row, col)))
    factor: dict[str, float] = {}
    for sig in {r[3] for r in rows}:
        if str(scale) == "auto":
            top = max((r[4] for r in rows if r[3] == sig and r[4] is not None), default=0.0)
            factor[sig] = 10.0 if 0 < top <= 10 else 1.0
        elif str(scale) in ("10", "100"):
            factor[sig] = 10.0 if str(scale) == "10" else 1.0
        else:
            raise FormatError(f"{path}: scale must be auto, 10 or 100, not {scale!r}")
    out = [
        Observation(
            time=t,
            source=SOURCE,
            signal=sig,
            country=cc,
            region=region,
            value=None if v is None else round(v * factor[sig], 6),
            provenance=prov,
        )
        for t, region, cc, sig, v in rows
    ]
    out.sort(key=lambda o: (o.time, o.signal, o.region or ""))
    return out
