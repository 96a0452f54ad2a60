"""Adapters from published outage datasets to pollwatch's Observations and Labels (docs/formats.md).

Observations (`pollwatch observations import --format NAME FILE`):
- `monash`: Monash IP Observatory index CSVs (local `time_e`, UTC `time_e_utc`, or `time_local` +
  `timezone_offset`; 0..100 or 0..10 connectivity and latency indices);
- `responsive`: raw responsive-address files, pooled per network and hour, explicit zeros inside the file's range;
- `ooni-raw`: OONI raw measurement CSVs -> hourly per-ASN and pooled failure rates (failures are not blocking);
- `ooni-hourly`: OONI hourly failure fractions per ASN;
- `ioda-signals`: a saved IODA /signals/raw response;
- `jsonl`: pollwatch's own JSON Lines.
Labels (evaluation cases): `ioda-outages` (IODA's curated list) and `keepiton` (#KeepItOn rows).

The datasets themselves are not part of the project (see docs/detection.md): point the adapters at the files.
"""

from __future__ import annotations

from pathlib import Path

from pollwatch.adapters.common import Progress
from pollwatch.adapters.ioda import LabelFile, ioda_labels, read_ioda_outages, read_ioda_signals
from pollwatch.adapters.keepiton import read_keepiton
from pollwatch.adapters.monash import read_monash
from pollwatch.adapters.ooni_hourly import read_ooni_hourly
from pollwatch.adapters.ooni_raw import read_ooni_raw
from pollwatch.adapters.responsive import read_responsive
from pollwatch.jsonl import FormatError
from pollwatch.models import Observation
from pollwatch.playbook import Watch

OBSERVATION_FORMATS = ("jsonl", "monash", "responsive", "ooni-raw", "ooni-hourly", "ioda-signals")
LABEL_FORMATS = ("ioda-outages", "keepiton")


def read_observations_as(
    fmt: str,
    path: str | Path,
    *,
    watch: Watch | None = None,
    country: str | None = None,
    tz: str | None = None,
    service: str | None = None,
    scale: str = "auto",
    progress: Progress | None = None,
) -> list[Observation]:
    """Observations from `path` in format `fmt` (OBSERVATION_FORMATS); the watch
    gives the country, zone and providers.
    """
    cc = country or (watch.country if watch else None)
    if fmt == "jsonl":
        from pollwatch.jsonl import read_observations

        return read_observations(path)
    if fmt == "monash":
        return read_monash(path, tz or (watch.timezone if watch else None), scale, progress)
    if fmt == "responsive":
        return read_responsive(path, cc, watch, progress=progress)
    if fmt == "ooni-raw":
        return read_ooni_raw(path, cc, service, progress)[0]
    if fmt in ("ooni-hourly", "ioda-signals"):
        if not cc or (fmt == "ooni-hourly" and not service):
            hourly = fmt == "ooni-hourly"
            raise FormatError(
                f"{path}: format {fmt} needs the country{' and the service' if hourly else ''} "
                f"(--country or --watch{', and --service' if hourly else ''})"
            )
        if fmt == "ooni-hourly":
            return read_ooni_hourly(path, cc, service, progress)[0]  # type: ignore[arg-type]
        codes = {r.code: r.code for r in watch.regions} if watch else None
        return read_ioda_signals(path, cc, codes)
    raise FormatError(f"unknown format {fmt!r}: one of {', '.join(OBSERVATION_FORMATS)}")


def read_labels_as(
    fmt: str, path: str | Path, country: str | None = None, progress: Progress | None = None
) -> LabelFile:
    if fmt == "ioda-outages":
        return read_ioda_outages(path, country, progress)
    if fmt == "keepiton":
        return read_keepiton(path, country, progress)
    raise FormatError(f"unknown label format {fmt!r}: one of {', '.join(LABEL_FORMATS)}")


__all__ = [
    "LABEL_FORMATS",
    "OBSERVATION_FORMATS",
    "LabelFile",
    "ioda_labels",
    "read_ioda_outages",
    "read_ioda_signals",
    "read_keepiton",
    "read_labels_as",
    "read_monash",
    "read_observations_as",
    "read_ooni_hourly",
    "read_ooni_raw",
    "read_responsive",
]
