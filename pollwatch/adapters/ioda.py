"""IODA's files: signal exports (format `ioda-signals`) and curated outage lists (labels, format `ioda-outages`).

Signal exports are what `GET /v2/signals/raw/{entityType}/{entityCode}` returns, saved to a file:
the envelope `{data: [[{entityType, entityCode, datasource, from, until, step, values}]]}`, read
with the IODA source's own parser (pollwatch.sources.ioda). Datasources map to signals as in the
source (bgp, ping-slash24 -> active_probing, merit-nt -> telescope); entity types country,
region (the region code IODA uses, or the watch's code via `region_codes`) and asn.

Curated outage lists (the investigated outages of "Destination Unreachable", SIGCOMM 2023):
one row per outage with `country`, `scope_level` (Country | Region | AS), `scope_detail`,
`cause`, and a start and end: `start_utc` / `end_utc` (ISO), or the list's own spelling in
`begin_raw` / `end_raw` (or `begin` / `end`): 'Sunday, January 21, 2018, 12:00:00 AM',
'Saturday June 2, 2018, 8:00 AM', and typos such as '2:30: AM'. Times are UTC. Rows whose end is
unreadable or before their start become no label, and are counted in `skipped`.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

from pollwatch.adapters.common import Progress, csv_rows, provenance
from pollwatch.adapters.labels import SCOPE_KIND, map_cause
from pollwatch.jsonl import FormatError
from pollwatch.models import IncidentKind, Observation
from pollwatch.simulate import Label
from pollwatch.words import country_code
from pollwatch.sources.base import ShapeError
from pollwatch.sources.ioda_api import DATASOURCE_SIGNALS, parse_signals
from pollwatch.timeutil import parse_time_or_none

MAX_EXPORT = 256 << 20  # a signal export larger than 256 MiB is not one request's answer


def read_ioda_signals(path: str | Path, country: str, region_codes: dict[str, str] | None = None) -> list[Observation]:
    """Observations from a saved /signals/raw response (country, its regions and its networks)."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    if path.stat().st_size > MAX_EXPORT:
        raise FormatError(f"{path}: {path.stat().st_size} bytes, larger than an IODA signal export can be")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        series = parse_signals(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path}:{getattr(exc, 'lineno', 1)}: not JSON ({exc})") from None
    except ShapeError as exc:
        raise FormatError(f"{path}: not an IODA signal export: {exc}") from None
    back = {v: k for k, v in (region_codes or {}).items()}
    prov = provenance(path)
    cc = country.upper()
    out = []
    for s in series:
        signal = DATASOURCE_SIGNALS.get(s.datasource)
        if signal is None:
            continue
        region = asn = None
        et = s.entityType.lower()
        if et == "region":
            region = back.get(s.entityCode, s.entityCode)
        elif et == "asn":
            if not s.entityCode.isdigit():
                raise FormatError(f"{path}: asn series with a code that is not a number: {s.entityCode[:20]!r}")
            asn = int(s.entityCode)
        elif et == "country":
            if s.entityCode.upper() != cc:
                continue
        else:
            continue
        for i, v in enumerate(s.values):
            t = datetime.fromtimestamp(s.from_ + i * s.step, tz=timezone.utc)
            out.append(
                Observation(
                    time=t,
                    source="ioda",
                    signal=signal,
                    country=cc,
                    region=region,
                    asn=asn,
                    value=None if v is None else float(v),
                    provenance=prov,
                )
            )
    out.sort(key=lambda o: (o.time, o.signal, o.region or "", o.asn or 0))
    return out


_WEEKDAY = re.compile(r"^(monday|tuesday|wednesday|thursday|friday|saturday|sunday),?\s*", re.I)


def parse_curated_time(text: str) -> datetime | None:
    """A curated-list time as UTC ('Sunday, January 21, 2018, 12:00:00 AM', '... 2:30: AM', ISO), or None."""
    t = (text or "").strip()
    if not t:
        return None
    iso = parse_time_or_none(t)
    if iso is not None:
        return iso
    t = _WEEKDAY.sub("", t)
    t = re.sub(r":\s*([AP]M)\b", r" \1", t, flags=re.I)  # '2:30: AM' -> '2:30 AM'
    t = re.sub(r"\s+", " ", t.replace(" ,", ",")).strip()
    for fmt in (
        "%B %d, %Y, %I:%M:%S %p",
        "%B %d, %Y, %I:%M %p",
        "%B %d %Y, %I:%M:%S %p",
        "%B %d %Y, %I:%M %p",
        "%B %d, %Y %I:%M:%S %p",
        "%B %d, %Y %I:%M %p",
    ):
        try:
            return datetime.strptime(t, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


class LabelFile:
    """Labels read from a file, and how many rows gave none (with the first few reasons)."""

    def __init__(self) -> None:
        self.labels: list[Label] = []
        self.skipped = 0
        self.reasons: list[str] = []

    def skip(self, why: str) -> None:
        self.skipped += 1
        if len(self.reasons) < 5:
            self.reasons.append(why)


def read_ioda_outages(path: str | Path, country: str | None = None, progress: Progress | None = None) -> LabelFile:
    """Labels from a curated outage list (normalized or with the list's own time spellings)."""
    path = Path(path)
    out = LabelFile()
    for line, row in csv_rows(path, progress, required=("country",)):
        begin = row.get("start_utc") or row.get("begin_raw") or row.get("begin") or ""
        end = row.get("end_utc") or row.get("end_raw") or row.get("end") or ""
        s, e = parse_curated_time(begin), parse_curated_time(end)
        if s is None:
            out.skip(f"{path}:{line}: start {begin[:40]!r} unreadable")
            continue
        if e is None or e <= s:
            out.skip(f"{path}:{line}: end {end[:40]!r} {'unreadable' if e is None else 'before the start'}")
            continue
        cc = country_code(row["country"])
        if cc is None:
            out.skip(f"{path}:{line}: country {row['country'][:40]!r} unknown")
            continue
        if country and cc != country.upper():
            continue
        kind = SCOPE_KIND.get((row.get("scope_level") or "").strip().lower(), IncidentKind.network_outage)
        detail = (row.get("scope_detail") or "").strip()
        rid = (row.get("id") or str(line)).strip()
        out.labels.append(
            Label(
                id=f"ioda-{rid}",
                kind=kind,
                country=cc,
                regions=[detail] if kind is IncidentKind.regional_outage and detail else [],
                asns=[int(x) for x in re.findall(r"\d+", detail)][:20] if kind is IncidentKind.network_outage else [],
                start=s,
                end=e,
                cause=map_cause(row.get("cause", "")),
            )
        )
    return out


def ioda_labels(
    path: str | Path, country: str | None = None, start: datetime | None = None, end: datetime | None = None
) -> list[Label]:
    """Labels from IODA's curated list, optionally for one country (ISO alpha-2) starting in [start, end)."""
    return [
        lb
        for lb in read_ioda_outages(path, country).labels
        if not (start and lb.start < start) and not (end and lb.start >= end)
    ]
