"""Scoring one scenario: which labels an incident overlaps (same country and family), when each was
detected and classified, and the replay that produces the incidents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, Field

from pollwatch.models import Anomaly, Cause, Family, Incident, IncidentKind, Observation
from pollwatch.baseline import baselined
from pollwatch.pipeline import analyse
from pollwatch.playbook import PLAYBOOKS_DIR, Watch
from pollwatch.simulate import Label
from pollwatch.timeutil import parse_time, tick_grid

KIND_FAMILY = {
    IncidentKind.nationwide_outage: Family.connectivity,
    IncidentKind.regional_outage: Family.connectivity,
    IncidentKind.network_outage: Family.connectivity,
    IncidentKind.service_block: Family.service,
    IncidentKind.circumvention_block: Family.circumvention,
    IncidentKind.throttling: Family.performance,
}
EVAL_PLAYBOOKS = PLAYBOOKS_DIR / "evaluation"


class LabelOutcome(BaseModel):
    label: Label
    detected: bool
    incident_id: str | None = None
    detected_at: datetime | None = None
    ttd_min: float | None = None
    kind: IncidentKind | None = None
    kind_at: datetime | None = None  # when an overlapping incident was first classified as the label's kind
    cause: Cause | None = None


class ScenarioResult(BaseModel):
    name: str
    clean: bool = False
    hours: float  # hours watched (ticks' span)
    labels: list[LabelOutcome] = Field(default_factory=list)
    incidents: int = 0
    matched_incidents: int = 0
    false_alerts: int = 0  # incidents overlapping no label
    notes: list[str] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)


def overlaps(incident: Incident, label: Label) -> bool:
    """Same country and family, and the incident (or one of a recurring incident's
    episodes) overlaps the label in time.
    """
    if incident.country != label.country or incident.family is not KIND_FAMILY[label.kind]:
        return False
    never = datetime.max.replace(tzinfo=timezone.utc)
    return any(s <= label.end and (e or never) >= label.start for s, e in incident.spans())


def _kind_at(incidents: Sequence[Incident], kind: IncidentKind) -> datetime | None:
    times = []
    for i in incidents:
        for h in i.kind_history:
            if h.get("to") == kind.value and h.get("at"):
                times.append(parse_time(h["at"]))
        if i.kind is kind and not i.kind_history:
            times.append(i.detected_at)
    return min(times) if times else None


def score(
    name: str,
    labels: Sequence[Label],
    incidents: Sequence[Incident],
    start: datetime,
    end: datetime,
    clean: bool = False,
) -> ScenarioResult:
    """Match incidents to labels (same country, family, overlapping time)."""
    outcomes = []
    for lb in labels:
        hits = sorted((i for i in incidents if overlaps(i, lb)), key=lambda i: (i.kind is not lb.kind, i.detected_at))
        if not hits:
            outcomes.append(LabelOutcome(label=lb, detected=False))
            continue
        first = min(hits, key=lambda i: i.detected_at)
        best = hits[0]
        outcomes.append(
            LabelOutcome(
                label=lb,
                detected=True,
                incident_id=best.id,
                detected_at=first.detected_at,
                ttd_min=round((first.detected_at - lb.start).total_seconds() / 60, 1),
                kind=best.kind,
                kind_at=_kind_at(hits, lb.kind),
                cause=best.cause,
            )
        )
    matched = [i for i in incidents if any(overlaps(i, lb) for lb in labels)]
    return ScenarioResult(
        name=name,
        clean=clean,
        hours=round((end - start).total_seconds() / 3600, 2),
        labels=outcomes,
        incidents=len(incidents),
        matched_incidents=len(matched),
        false_alerts=len(incidents) - len(matched),
    )


def run_watch(
    watch: Watch,
    observations: Sequence[Observation],
    start: datetime,
    end: datetime,
    cadence: timedelta = timedelta(minutes=5),
) -> tuple[list[Incident], list[Anomaly]]:
    """Replay [start, end) at `cadence` (whatever the playbook's phases say) and return the incidents and anomalies;
    the providers' and regions' address space is measured from the history before `start`, as the baseline flow does."""
    ticks = [t for t in tick_grid(start, end, cadence) if t < end]
    out = analyse(baselined(watch, observations, start), None, ticks, list(observations))
    anomalies: dict[str, Anomaly] = {a.id: a for a in out.anomalies}
    return out.incidents, list(anomalies.values())
