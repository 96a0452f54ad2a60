"""OONI hourly failure fractions per ASN -> `service_failure_rate` Observations with counts.

Columns: hour_utc, probe_asn, asn_name, n_measurements, n_with_any_failure, frac_with_failure,
... (the aggregation of one OONI test, e.g. `telegram`, per network and hour). An hour with no
row has no measurements: no observation is made up for it (missing data, not an outage). A bad
row stops the import with `FILE:LINE: field: what` (a count that is not a whole number, more
failures than measurements), as in the other adapters.
"""

from __future__ import annotations

from pathlib import Path

from pollwatch.adapters.common import Progress, asn_of, csv_rows, iso_time, need, provenance
from pollwatch.jsonl import FormatError
from pollwatch.models import Observation

SIGNAL = "service_failure_rate"
SOURCE = "ooni"
COLUMNS = ("hour_utc", "probe_asn", "n_measurements", "n_with_any_failure")


def _count(path: Path, line: int, row: dict[str, str], field: str) -> int:
    text = need(path, line, row, field)
    if not text.isdigit():
        raise FormatError(f"{path}:{line}: {field}: expected a whole number of measurements, got {text[:40]!r}")
    return int(text)


def read_ooni_hourly(
    path: str | Path, country: str, service: str, progress: Progress | None = None
) -> tuple[list[Observation], dict[int, str]]:
    """(observations, ASN -> network name) from an hourly per-ASN OONI aggregation CSV."""
    path = Path(path)
    names: dict[int, str] = {}
    rows = []  # (hour, asn, value, measurements)
    for line, row in csv_rows(path, progress, required=COLUMNS):
        n = _count(path, line, row, "n_measurements")
        failed = _count(path, line, row, "n_with_any_failure")
        if failed > n:
            raise FormatError(
                f"{path}:{line}: n_with_any_failure: {failed} failed of {n} measurements: "
                "expected at most n_measurements"
            )
        asn = asn_of(path, line, need(path, line, row, "probe_asn"))
        names.setdefault(asn, (row.get("asn_name") or "").strip()[:100] or f"AS{asn}")
        rows.append((iso_time(path, line, row, "hour_utc"), asn, round(failed / n, 6) if n else None, n))
    prov = provenance(path)
    out = [
        Observation(
            time=t,
            source=SOURCE,
            signal=SIGNAL,
            country=country,
            asn=asn,
            service=service,
            value=v,
            count=n,
            provenance=prov,
        )
        for t, asn, v, n in rows
    ]
    out.sort(key=lambda o: (o.time, o.asn or 0))
    return out, names
