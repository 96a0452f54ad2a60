"""Monash IP Observatory connectivity index (0..100) per county/state -> Observations.

Columns: iso, id_1, name_1 (province/state), [id_2, name_2 (county)], time_e, time_e_str, lat,
lon, connectivity. `time_e` is the epoch of the LOCAL wall clock (not UTC): it is read as a
naive local time and converted to UTC with the IANA time zone (so DST, if any, is handled).
Each county (or state, when the file has no counties) is a region named `<name_1>/<name_2>`
(or `<name_1>`), signal `connectivity_index`, source `monash`.
"""

from __future__ import annotations

import csv
import hashlib
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pycountry

from pollwatch.models import Observation, Provenance

SIGNAL = "connectivity_index"
SOURCE = "monash"


def country_code(name_or_code: str) -> str:
    """ISO 3166-1 alpha-2 from an alpha-3 code or a country name ('IRN', 'Iran' -> 'IR')."""
    text = name_or_code.strip()
    c = pycountry.countries.get(alpha_3=text.upper()) if len(text) == 3 else None
    if c is None and len(text) == 2:
        c = pycountry.countries.get(alpha_2=text.upper())
    if c is None:
        try:
            c = pycountry.countries.search_fuzzy(text)[0]
        except LookupError:
            raise ValueError(f"unknown country {name_or_code!r}") from None
    return c.alpha_2


def local_epoch_to_utc(epoch: int, tz: ZoneInfo) -> datetime:
    naive = datetime.fromtimestamp(epoch, tz=timezone.utc).replace(tzinfo=None)
    return naive.replace(tzinfo=tz).astimezone(timezone.utc)


def read_monash(path: str | Path, tz: str) -> list[Observation]:
    """Observations from a Monash connectivity CSV whose times are local to `tz`."""
    path = Path(path)
    zone = ZoneInfo(tz)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    prov = Provenance(request=f"file:{path.name}", payload_hash=digest)
    out: list[Observation] = []
    codes: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            iso3 = row["iso"]
            cc = codes.get(iso3) or codes.setdefault(iso3, country_code(iso3))
            region = row["name_1"] + (f"/{row['name_2']}" if row.get("name_2") else "")
            raw = (row.get("connectivity") or "").strip()
            value = float(raw) if raw and raw.upper() != "NA" else None
            out.append(Observation(time=local_epoch_to_utc(int(row["time_e"]), zone), source=SOURCE, signal=SIGNAL, country=cc,
                                   region=region, value=value, provenance=prov))
    out.sort(key=lambda o: (o.time, o.region or ""))
    return out
