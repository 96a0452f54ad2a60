"""OONI raw measurement CSVs -> hourly failure rates per network and pooled (format `ooni-raw`).

The CSV dumps OONI's analysts publish (e.g. ooni/notebooks) have one row per measurement, or per
(measurement, endpoint) for tests with several endpoints such as `telegram`: columns
`measurement_start_time` (UTC), `probe_asn` (AS33771 or 33771), `probe_cc`, `test_name`, and a
measurement id (`measurement_uid`, else `report_id` + `input`). Per measurement:

- an **anomaly** (signs of blocking) is any endpoint whose `failure_class` is a network failure
  (`dns`, `tcp`, `tls`, `https`, `http`, ...), or an `anomaly` / `confirmed` column that is true;
- a **failure** is OONI's word for a measurement that did not complete (the probe's own
  problem): `failure` true, or no endpoint with a `failure_class` at all. Failures are not
  blocking: they leave the denominator, as in OONI's (anomaly + confirmed) / (measurements - failures);
- everything else (`failure_class` `ok`) is a clean measurement.

Per hour and network: `service_failure_rate` = anomalous / judged measurements, with `count` the
judged measurements; and the same pooled over every network of the country (asn null), as the
OONI source reports it. Hours without measurements get no observation (missing data is not an
outage). The service is `service=` or the file's `test_name`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

from pollwatch.adapters.common import Progress, asn_of, csv_rows, iso_time, need, provenance
from pollwatch.jsonl import FormatError
from pollwatch.models import Observation
from pollwatch.timeutil import floor_time

SIGNAL = "service_failure_rate"
HOUR = timedelta(hours=1)
CLEAN = {"ok", "none", "null", ""}
TRUE = {"true", "1", "yes", "t"}
FALSE = {"false", "0", "no", "f", ""}
FLAGS = ("anomaly", "confirmed", "failure")


def _take(m: list, row: dict[str, str]) -> None:
    """Count one row of measurement `m` ([hour, asn, anomalous, completed endpoints, failure flag]) in OONI's terms:
    a failure_class other than ok/none is an anomaly; `anomaly`/`confirmed` true is one; `failure` true means the
    measurement itself failed."""
    fc = (row.get("failure_class") or "").strip().lower() if "failure_class" in row else None
    if fc is not None:
        if fc in CLEAN:
            m[3] += fc == "ok"
        else:
            m[2] = True
            m[3] += 1
    if any((row.get(k) or "").strip().lower() in TRUE for k in ("anomaly", "confirmed")):
        m[2] = True
        m[3] += 1
    elif fc is None and ("anomaly" in row or "confirmed" in row):
        m[3] += 1  # OONI's flags say it completed without signs of blocking
    if (row.get("failure") or "").strip().lower() in TRUE:
        m[4] = True


def _the_one(path: Path, given: str | None, seen: set[str], what: str, option: str) -> str:
    """The value given, else the file's only one; a clear error when the file has several or none."""
    value = given or (next(iter(seen)) if len(seen) == 1 else "")
    if not value:
        raise FormatError(f"{path}: give the {what} ({option}): the file has {', '.join(sorted(seen)) or 'none'}")
    return value


def read_ooni_raw(
    path: str | Path, country: str | None = None, service: str | None = None, progress: Progress | None = None
) -> tuple[list[Observation], dict[int, str]]:
    """(observations, ASN -> network name) from an OONI raw measurement CSV."""
    path = Path(path)
    # measurement id -> [hour, asn, anomalous, completed endpoints, failure flag]
    meas: dict[str, list] = {}
    names: dict[int, str] = {}
    cc_seen: set[str] = set()
    services: set[str] = set()
    for line, row in csv_rows(path, progress, required=("measurement_start_time", "probe_asn")):
        mid = (
            row.get("measurement_uid") or ""
        ).strip() or f"{row.get('report_id', '')}|{row.get('input', '')}|{row['measurement_start_time']}"
        t = iso_time(path, line, row, "measurement_start_time")
        asn = asn_of(path, line, need(path, line, row, "probe_asn"))
        if row.get("probe_as_org_name"):
            names.setdefault(asn, row["probe_as_org_name"].strip()[:100])
        if row.get("probe_cc"):
            cc_seen.add(row["probe_cc"].strip().upper())
        if row.get("test_name"):
            services.add(row["test_name"].strip())
        for flag in FLAGS:
            if (row.get(flag) or "").strip().lower() not in TRUE | FALSE:
                raise FormatError(f"{path}:{line}: {flag}: expected true or false, got {row[flag][:40]!r}")
        _take(meas.setdefault(mid, [floor_time(t, HOUR), asn, False, 0, False]), row)
    cc = _the_one(path, country, cc_seen, "country", "--country").upper()
    svc = _the_one(path, service, services, "service", "--service")
    # (hour, asn) -> [anomalous, judged]
    per: dict[tuple[datetime, int | None], list[int]] = defaultdict(lambda: [0, 0])
    for hour, asn, anomalous, completed, failed in meas.values():
        if failed or not completed:
            continue  # a failed measurement says nothing about blocking
        for key in ((hour, asn), (hour, None)):
            per[key][0] += anomalous
            per[key][1] += 1
    prov = provenance(path)
    out = [
        Observation(
            time=hour,
            source="ooni",
            signal=SIGNAL,
            country=cc,
            asn=asn,
            service=svc,
            value=round(a / n, 6),
            count=n,
            provenance=prov,
        )
        for (hour, asn), (a, n) in per.items()
    ]
    out.sort(key=lambda o: (o.time, o.asn is not None, o.asn or 0))
    return out, names
