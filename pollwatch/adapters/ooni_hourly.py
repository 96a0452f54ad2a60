"""OONI hourly failure fractions per ASN -> `service_failure_rate` Observations with counts.

Columns: hour_utc, probe_asn, asn_name, n_measurements, n_with_any_failure, frac_with_failure,
... (the aggregation of one OONI test, e.g. `telegram`, per network and hour). An hour with no
row has no measurements: no observation is made up for it (missing data, not an outage).
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from pollwatch.models import Observation, Provenance
from pollwatch.timeutil import parse_time

SIGNAL = "service_failure_rate"
SOURCE = "ooni"


def read_ooni_hourly(path: str | Path, country: str, service: str) -> tuple[list[Observation], dict[int, str]]:
    """(observations, ASN -> network name) from an hourly per-ASN OONI aggregation CSV."""
    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    prov = Provenance(request=f"file:{path.name}", payload_hash=digest)
    out: list[Observation] = []
    names: dict[int, str] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            n = int(row["n_measurements"])
            asn = int(row["probe_asn"])
            names.setdefault(asn, row.get("asn_name") or f"AS{asn}")
            failed = int(row["n_with_any_failure"])
            out.append(
                Observation(
                    time=parse_time(row["hour_utc"]),
                    source=SOURCE,
                    signal=SIGNAL,
                    country=country,
                    asn=asn,
                    service=service,
                    value=round(failed / n, 6) if n else None,
                    count=n,
                    provenance=prov,
                )
            )
    out.sort(key=lambda o: (o.time, o.asn or 0))
    return out, names
