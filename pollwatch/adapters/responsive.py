"""Raw responsive-address files -> responsive addresses per network and hour (format `responsive`).

One row per address that answered a probe: a time (`time_utc` / `timestamp` ISO 8601 with zone,
or `time_e_utc` / `epoch` unix seconds), the network (`asn`, e.g. 9198 or AS9198; or `isp`, a
provider name matched against the watch's providers), and the address (`ip`, `ip_hash` or
`address`: hashed addresses are fine, they are only counted). Rows are pooled per network and
hour (distinct addresses). An hour inside the file's range with no row for a network is an
explicit zero for it: the file lists every address that answered, so no row means nobody did.
Hours outside the file's range are not made up. Signal `responsive_addresses`, source `monash`
(or `source=`), country from the watch or `country=`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

from pollwatch.adapters.common import Progress, asn_of, csv_rows, epoch, iso_time, need, provenance
from pollwatch.jsonl import FormatError
from pollwatch.models import Observation
from pollwatch.playbook import Watch
from pollwatch.timeutil import floor_time

SIGNAL = "responsive_addresses"
HOUR = timedelta(hours=1)
TIME_ISO = ("time_utc", "timestamp", "time")
TIME_EPOCH = ("time_e_utc", "epoch")
ADDRESS = ("ip_hash", "ip", "address")


def _first(row: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in row), None)


def _asn(path: Path, line: int, row: dict[str, str], names: dict[str, int]) -> int:
    """The row's `asn`, else its `isp` by the watch's provider names."""
    if (row.get("asn") or "").strip():
        return asn_of(path, line, row["asn"], "asn")
    isp = need(path, line, row, "isp")
    if isp.strip().lower() not in names:
        raise FormatError(
            f"{path}:{line}: isp: {isp[:60]!r} is not a provider of the watch; give an asn column or a "
            "watch that lists it"
        )
    return names[isp.strip().lower()]


def read_responsive(
    path: str | Path,
    country: str | None = None,
    watch: Watch | None = None,
    source: str = "monash",
    progress: Progress | None = None,
) -> list[Observation]:
    path = Path(path)
    cc = (country or (watch.country if watch else None) or "").upper()
    if not cc:
        raise FormatError(f"{path}: give the country (--country, or a watch)")
    names = {p.name.strip().lower(): p.asn for p in (watch.providers if watch else [])}
    seen: dict[tuple[datetime, int], set[str]] = defaultdict(set)
    nets: set[int] = set()
    lo = hi = None
    tcol = ecol = acol = None
    for line, row in csv_rows(path, progress):
        if acol is None:
            tcol, ecol, acol = _first(row, TIME_ISO), _first(row, TIME_EPOCH), _first(row, ADDRESS)
            if acol is None or (tcol is None and ecol is None) or not ({"asn", "isp"} & set(row)):
                raise FormatError(
                    f"{path}:1: expected a time ({', '.join(TIME_ISO + TIME_EPOCH)}), asn or isp, and an address "
                    f"({', '.join(ADDRESS)}) column"
                )
        t = epoch(path, line, row, ecol) if ecol else iso_time(path, line, row, tcol)  # type: ignore[arg-type]
        asn = _asn(path, line, row, names)
        hour = floor_time(t, HOUR)
        seen[(hour, asn)].add(need(path, line, row, acol))
        nets.add(asn)
        lo = hour if lo is None or hour < lo else lo
        hi = hour if hi is None or hour > hi else hi
    if lo is None or hi is None:
        return []
    prov = provenance(path)
    out = []
    t = lo
    while t <= hi:
        for asn in sorted(nets):
            out.append(
                Observation(
                    time=t,
                    source=source,
                    signal=SIGNAL,
                    country=cc,
                    asn=asn,
                    value=float(len(seen.get((t, asn), ()))),
                    provenance=prov,
                )
            )
        t += HOUR
    return out
