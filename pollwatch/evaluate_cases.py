"""Evaluation cases as files: `pollwatch evaluate CASE.yaml ...` (docs/detection.md).

A case names a watch, the data files with their formats (pollwatch.adapters), the labels (files
in a label format, or written out in the case), and the criteria that apply:

    name: ir-2019-shutdown
    watch: ../ir-2019-shutdown.yaml        # relative to the case file, or a watch name
    # relative data paths start in the shared real-data folder ($POLLWATCH_REAL_DATA);
    data_root: real
                                           # `case` (default): beside the case file
    data:
      - {file: timeseries/irn-2019-11-11_gif.csv, format: monash}
    labels:
      - {file: ground_truth/ioda_curated_outages_2018_2020.csv, format: ioda-outages, kinds: [nationwide_outage]}
      - {id: my-label, kind: service_block, asns: [33771], services: [telegram],
         start: 2023-11-13T00:00Z, end: 2023-11-25T00:00Z,
         cause: government_directed}
    regions_from_data: true                # the watch's regions are the data's (Monash counties)
    pooled_country: true                   # add the country's pooled OONI series over the watch's networks
    criteria: [recall, false_alerts, time_to_detect, cause, visible_onset, networks]

Labels from files are kept when they are the case's country and start inside the data's span.
Criteria: `recall`, `false_alerts` (incidents overlapping no label), `time_to_detect`, `cause`
are always computed; `visible_onset` adds the onset visible in the data (the mean over regions
falling below 0.9 x its median of the previous 24 h) and alerts before it; `networks` adds which
networks were flagged against the labels' networks, anomalies before each network's labeled onset,
and each flagged network's tests before and during its anomaly.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pollwatch.models import Cause, IncidentKind, Observation, stable_id
from pollwatch.playbook import PLAYBOOKS_DIR
from pollwatch.simulate import Label

CASES_DIR = PLAYBOOKS_DIR / "evaluation" / "cases"
# what a case may be judged on
Criterion = Literal["recall", "false_alerts", "time_to_detect", "cause", "visible_onset", "networks"]


class CaseError(ValueError):
    """A case file could not be read or used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataRef(_Strict):
    file: str
    format: str = "jsonl"
    service: str | None = None
    tz: str | None = None
    scale: str = "auto"


class LabelRef(_Strict):
    # a label file ...
    file: str | None = None
    format: str | None = None
    kinds: list[IncidentKind] | None = None
    # ... or one label written out
    id: str | None = None
    kind: IncidentKind | None = None
    regions: list[str] = Field(default_factory=list)
    asns: list[int] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None
    cause: Cause = Cause.unknown
    note: str = ""


class Case(_Strict):
    name: str
    watch: str
    data_root: Literal["case", "real"] = "case"
    data: list[DataRef] = Field(min_length=1)
    labels: list[LabelRef] = Field(default_factory=list)
    regions_from_data: bool = False
    pooled_country: bool = False
    criteria: list[Criterion] = Field(default_factory=lambda: ["recall", "false_alerts", "time_to_detect", "cause"])
    source_file: str | None = Field(default=None, exclude=True)


def load_case(path: str | Path) -> Case:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CaseError(f"{path}: no such case file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise CaseError(f"{path}:{mark.line + 1 if mark else 1}: not YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise CaseError(f"{path}: a case is a mapping (name, watch, data, labels, criteria)")
    try:
        case = Case.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise CaseError(f"{path}: {problems}") from None
    _check_formats(path, case)
    for i, lb in enumerate(case.labels):
        for field in ("start", "end"):
            t = getattr(lb, field)
            if t is not None and t.utcoffset() is None:
                raise CaseError(
                    f"{path}: labels.{i}.{field}: {t.isoformat()} has no time zone; write it in ISO 8601 with a zone, "
                    'e.g. "2019-06-09T05:00:00Z"'
                )
        if lb.start is not None and lb.end is not None and lb.end <= lb.start:
            raise CaseError(f"{path}: labels.{i}.end: {lb.end.isoformat()} is not after start {lb.start.isoformat()}")
        if lb.file is None and (lb.kind is None or lb.start is None or lb.end is None):
            raise CaseError(f"{path}: labels.{i}: either a file with its format, or a label with kind, start and end")
        if lb.file is not None and lb.format is None:
            raise CaseError(f"{path}: labels.{i}.format: a label file needs its format (ioda-outages, keepiton)")
    case.source_file = str(path)
    return case


def _check_formats(path: Path, case: Case) -> None:
    """Each data and label file's format is one the adapters read (before any file is read)."""
    from pollwatch.adapters import LABEL_FORMATS, OBSERVATION_FORMATS

    for i, d in enumerate(case.data):
        if d.format not in OBSERVATION_FORMATS:
            raise CaseError(
                f"{path}: data.{i}.format: unknown format {d.format!r}: one of {', '.join(OBSERVATION_FORMATS)}"
            )
    for i, lb in enumerate(case.labels):
        if lb.format is not None and lb.format not in LABEL_FORMATS:
            raise CaseError(
                f"{path}: labels.{i}.format: unknown label format {lb.format!r}: one of {', '.join(LABEL_FORMATS)}"
            )


def _resolve(case: Case, name: str, real_root: Path | None) -> Path:
    p = Path(name)
    if p.is_absolute():
        return p
    if case.data_root == "real":
        if real_root is None:
            raise CaseError(f"{case.source_file}: data_root is real, but the shared real-data folder was not found")
        return real_root / p
    return Path(case.source_file or ".").parent / p


def missing_files(case: Case, real_root: Path | None) -> list[str]:
    """The case's data and label files that are not there (a fresh clone has no shared data)."""
    names = [d.file for d in case.data] + [lb.file for lb in case.labels if lb.file]
    try:
        return [n for n in names if not _resolve(case, n, real_root).is_file()]
    except CaseError:
        return names


def case_watch(case: Case) -> Any:
    from pollwatch.playbook import PlaybookError, find_watch, load_watch

    p = Path(case.source_file or ".").parent / case.watch
    try:
        return load_watch(p if p.is_file() else find_watch(case.watch))
    except PlaybookError as exc:  # the watch's own problems name its file; a missing one names the case's field
        raise CaseError(f"{case.source_file}: watch: " + "; ".join(exc.problems)) from None


def case_observations(case: Case, watch: Any, real_root: Path | None) -> list[Observation]:
    from pollwatch.adapters import read_observations_as

    obs: list[Observation] = []
    for d in case.data:
        obs += read_observations_as(
            d.format, _resolve(case, d.file, real_root), watch=watch, tz=d.tz, service=d.service, scale=d.scale
        )
    if case.pooled_country:
        from pollwatch.sources.ooni import country_series

        obs = [o for o in obs if o.asn is not None or o.signal != "service_failure_rate"]
        obs += country_series(obs, {p.asn for p in watch.providers})
    obs.sort(key=lambda o: (o.time, o.asn or 0))
    return obs


def case_labels(case: Case, country: str, start: datetime, end: datetime, real_root: Path | None) -> list[Label]:
    from pollwatch.adapters import read_labels_as

    out: list[Label] = []
    for lb in case.labels:
        if lb.file:
            got = read_labels_as(lb.format or "", _resolve(case, lb.file, real_root), country)
            out += [x for x in got.labels if start <= x.start < end and (lb.kinds is None or x.kind in lb.kinds)]
        else:
            assert lb.kind is not None and lb.start is not None and lb.end is not None
            out.append(
                Label(
                    id=lb.id or stable_id(case.name, lb.kind.value, lb.start.isoformat(), length=12),
                    kind=lb.kind,
                    country=country,
                    regions=lb.regions,
                    asns=lb.asns,
                    services=lb.services,
                    start=lb.start,
                    end=lb.end,
                    cause=lb.cause,
                )
            )
    return out


def builtin_cases() -> list[Path]:
    return sorted(CASES_DIR.glob("*.yaml"))


def case_line(r: Any) -> str:
    """One line per case: recall, false alerts, time to detect, cause accuracy."""
    det = [lo for lo in r.labels if lo.detected]
    ttd = sorted(lo.ttd_min for lo in det if lo.ttd_min is not None)
    med = ttd[len(ttd) // 2] if ttd else None
    cause = sum(lo.cause is lo.label.cause for lo in det)
    return (
        f"{r.name:<28} recall {len(det)}/{len(r.labels)}  false alerts {r.false_alerts} of {r.incidents} incident(s)  "
        f"time to detect median {'-' if med is None else f'{med} min'}  cause {cause}/{len(det)}"
    )
