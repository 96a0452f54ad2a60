"""Evaluation: replay labeled scenarios through the analysis stages and score the incidents.

Scores per scenario and overall (docs/detection.md):
- event-level recall: a label counts as detected when an incident of the same country and the
  same family (connectivity for nationwide/regional/network outages, service, circumvention,
  performance for throttling) overlaps it in time;
- precision: the share of incidents that overlap some label of their country and family;
- false alerts per watch-week: incidents opened on event-free (clean) data, per 7 days watched;
- time to detect: detected_at minus the labeled start (median, p95), and for nationwide outages
  in native steps of the finest connectivity signal;
- kind accuracy and cause accuracy over the detected labels.

Inputs: seeded simulator scenarios (`generated_suite`, `clean_suite`) and, when the shared real
data exists, the real events through `pollwatch.adapters` (`real_suite`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from pollwatch import progress
from pollwatch.models import Anomaly, Cause, Family, Incident, IncidentKind, Observation, iso
from pollwatch.baseline import baselined
from pollwatch.pipeline import analyse
from pollwatch.playbook import PLAYBOOKS_DIR, Watch
from pollwatch.simulate import EventSpec, Label, random_events, simulate
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
    spans = [(incident.start, incident.end)] + [(e.start, e.end) for e in incident.episodes]
    return any(s <= label.end and (e or never) >= label.start for s, e in spans)


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


# --- suites ----------------------------------------------------------------------------------


# Realistic partial service blocks (Kenya 2023: 15-70 % of Safaricom's tests failed) and baseline
# failure rates that differ by network and service (OONI's Kenya data: 0-10 % before the block).
BLOCK_DEPTH = (0.2, 0.95)
HARD_BLOCK_DEPTH = (0.2, 0.5)
SERVICE_BASE = (0.0, 0.1)


def harden(specs: list[EventSpec], seed: int) -> list[EventSpec]:
    """Harder variants of random events: partial outages (60-95 % lost), partial blocks (20-50 % of
    tests fail), milder throttling (x2.5-5)."""
    rng = random.Random(seed * 7919)
    out = []
    for e in specs:
        if KIND_FAMILY[e.kind] is Family.connectivity:
            e = e.model_copy(update={"depth": round(rng.uniform(0.6, 0.95), 3)})
        elif e.kind is IncidentKind.throttling:
            e = e.model_copy(update={"factor": round(rng.uniform(2.5, 5.0), 2)})
        else:
            e = e.model_copy(update={"depth": round(rng.uniform(*HARD_BLOCK_DEPTH), 3)})
        out.append(e)
    return out


def generated_suite(
    watch: Watch,
    scenarios: int = 6,
    events: int = 10,
    seed: int = 100,
    history: timedelta = timedelta(days=2),
    spacing: timedelta = timedelta(hours=12),
    hard: bool = False,
) -> list[ScenarioResult]:
    """Seeded simulator scenarios, each `events` random events (all kinds) after `history` of warm-up.

    Service blocks fail `BLOCK_DEPTH` of the tests, on networks whose own failure rates are
    `SERVICE_BASE`. `hard`: partial depths (see `harden`) and 3 % of points missing instead of 0.5 %."""
    results = []
    base = watch.at_offset(timedelta(days=-10))
    for i in range(scenarios):
        s = seed + i
        progress.step(f"{'hard' if hard else 'generated'} scenario {i + 1} of {scenarios}", i, scenarios)
        start = base  # the same calendar span; the seeds differ
        watch_start = start + history
        end = watch_start + spacing * events
        specs = random_events(watch, watch_start, end, events, s, block_depth=BLOCK_DEPTH)
        if hard:
            specs = harden(specs, s)
        sc = simulate(
            watch,
            start,
            end,
            specs,
            seed=s,
            missing_rate=0.03 if hard else 0.005,
            service_base=SERVICE_BASE,
            country_services=True,
        )
        incidents, _ = run_watch(watch, sc.observations, watch_start, end)
        results.append(score(f"{'hard' if hard else 'generated'}-{s}", sc.labels, incidents, watch_start, end))
    return results


def clean_suite(
    watch: Watch, weeks: int = 2, seed: int = 500, history: timedelta = timedelta(days=2)
) -> list[ScenarioResult]:
    """Event-free weeks: every incident is a false alert."""
    results = []
    base = watch.at_offset(timedelta(days=-30))
    for i in range(weeks):
        progress.step(f"clean week {i + 1} of {weeks}", i, weeks)
        start = base + timedelta(days=9 * i)
        watch_start = start + history
        end = watch_start + timedelta(days=7)
        sc = simulate(watch, start, end, [], seed=seed + i, service_base=SERVICE_BASE, country_services=True)
        incidents, _ = run_watch(watch, sc.observations, watch_start, end)
        results.append(score(f"clean-{seed + i}", [], incidents, watch_start, end, clean=True))
    return results


def _visible_onset(obs: Sequence[Observation], label_start: datetime, fraction: float = 0.9) -> datetime | None:
    """First hour, from 12 h before the label on, when the mean over regions falls below `fraction` x its median
    over the preceding 24 h: the onset as it shows in the data."""
    by_time: dict[datetime, list[float]] = {}
    for o in obs:
        if o.value is not None:
            by_time.setdefault(o.time, []).append(o.value)
    times = sorted(by_time)
    means = {t: sum(v) / len(v) for t, v in by_time.items()}
    for t in times:
        if t < label_start - timedelta(hours=12):
            continue
        past = sorted(means[u] for u in times if t - timedelta(hours=24) <= u < t)
        if len(past) < 6:
            continue
        med = past[len(past) // 2]
        if means[t] < fraction * med:
            return t
    return None


def _with_regions(watch: Watch, obs: Sequence[Observation]) -> Watch:
    from pollwatch.playbook import Region

    names = sorted({o.region for o in obs if o.region})
    return watch.model_copy(update={"regions": [Region(code=n, name=n) for n in names]})


def real_suite(root: str | Path | None) -> list[ScenarioResult]:
    """The built-in real-data cases (playbooks/evaluation/cases/) whose files exist under `root` (shared/data/real)."""
    from pollwatch.evaluate_cases import builtin_cases, load_case, missing_files

    root = Path(root) if root else None
    out = []
    paths = builtin_cases()
    for i, path in enumerate(paths):
        case = load_case(path)
        progress.step(f"real case {case.name}", i, len(paths))
        if not missing_files(case, root):
            out.append(run_case(case, root))
    return out


def run_case(case: Any, real_root: Path | None = None) -> ScenarioResult:
    """Replay one evaluation case (pollwatch.evaluate_cases) and score it with its criteria."""
    from pollwatch.evaluate_cases import case_labels, case_observations, case_watch

    watch = case_watch(case)
    obs = case_observations(case, watch, real_root)
    if not obs:
        raise ValueError(f"{case.source_file}: the case's data files hold no observations")
    if case.regions_from_data:
        watch = _with_regions(watch, obs)
    start, end = obs[0].time, obs[-1].time + timedelta(hours=1)
    labels = case_labels(case, watch.country, start, end, real_root)
    # 5-min ticks: a point is judged as soon as it is published
    incidents, anomalies = run_watch(watch, obs, start, end)
    res = score(case.name, labels, incidents, start, end)
    if "visible_onset" in case.criteria:
        _visible_onset_extras(res, obs, incidents)
    if "networks" in case.criteria:
        _network_extras(res, watch, obs, labels, anomalies)
    return res


def _visible_onset_extras(res: ScenarioResult, obs: Sequence[Observation], incidents: Sequence[Incident]) -> None:
    for lo in res.labels:
        onset = _visible_onset(obs, lo.label.start)
        lo_extra: dict[str, Any] = {"label_start": iso(lo.label.start), "visible_onset": iso(onset)}
        if onset and lo.detected_at:
            lo_extra["detected_min_after_visible_onset"] = round((lo.detected_at - onset).total_seconds() / 60, 1)
        if onset and lo.kind_at:
            lo_extra["nationwide_min_after_visible_onset"] = round((lo.kind_at - onset).total_seconds() / 60, 1)
        lo_extra["classified_as_label_kind_at"] = iso(lo.kind_at)
        early = [
            i for i in incidents if i.start < min(lo.label.start, onset or lo.label.start) and not overlaps(i, lo.label)
        ]
        lo_extra["alerts_before_onset"] = [
            f"{i.kind.value} {', '.join(i.scope.regions[:3])} from {iso(i.start)}" for i in early
        ]
        res.extra[lo.label.id] = lo_extra


def _network_extras(
    res: ScenarioResult, watch: Watch, obs: Sequence[Observation], labels: Sequence[Label], anomalies: Sequence[Anomaly]
) -> None:
    """Networks flagged against the labels' networks; anomalies before each network's labeled onset (the onset the
    data shows); the tests of each flagged network outside the labels before and during its anomaly."""
    names = {p.asn: p.name for p in watch.providers}
    onset: dict[int, datetime] = {}
    for lb in labels:
        for a in lb.asns:
            onset[a] = min(onset.get(a, lb.start), lb.start)
    first = min((lb.start for lb in labels), default=None)
    flagged = sorted({a.entity.asn for a in anomalies if a.entity.asn is not None})
    affected = set(onset)
    early = [
        a
        for a in anomalies
        if (a.entity.asn in onset and a.start < onset[a.entity.asn])
        or (a.entity.asn is None and first is not None and a.start < first)
    ]
    res.extra["networks"] = {
        "asns_flagged": flagged,
        "asns_expected": sorted(affected),
        "onsets": {f"AS{a}": iso(t) for a, t in sorted(onset.items())},
        "missed_asns": sorted(affected - set(flagged)),
        "unaffected_flagged": sorted(set(flagged) - affected),
        "anomalies": [
            f"{_network(a)} {names.get(a.entity.asn or 0, '')}: {iso(a.start)} -> {iso(a.end)} (detected "
            f"{iso(a.detected_at)})"
            for a in sorted(anomalies, key=lambda a: a.start)
        ],
        "alerts_before_onset": [f"{_network(a)} from {iso(a.start)}" for a in early],
        "unaffected_flagged_evidence": [
            _block_evidence(obs, a, names)
            for a in sorted(anomalies, key=lambda a: a.start)
            if a.entity.asn is not None and a.entity.asn not in affected
        ],
    }


def _network(a: Anomaly) -> str:
    return f"AS{a.entity.asn}" if a.entity.asn is not None else f"{a.entity.country} (all networks)"


def _block_evidence(obs: Sequence[Observation], a: Anomaly, names: dict[int, str]) -> str:
    """Failed / total tests of the anomaly's network before it started and while it lasted."""
    end = a.end or datetime.max.replace(tzinfo=timezone.utc)
    before, during = [0.0, 0], [0.0, 0]
    for o in obs:
        if o.asn != a.entity.asn or o.service != a.entity.service or o.value is None or not o.count:
            continue
        acc = before if o.time < a.start else during if o.time <= end else None
        if acc is not None:
            acc[0] += o.value * o.count
            acc[1] += o.count
    pct = lambda x: f"{round(x[0])}/{x[1]} failed ({100 * x[0] / x[1]:.0f} %)" if x[1] else "no tests"  # noqa: E731
    return (
        f"AS{a.entity.asn} {names.get(a.entity.asn or 0, '')}: before {iso(a.start)} {pct(before)}; "
        f"from then to {iso(a.end) if a.end else 'the end of the data'} {pct(during)}"
    )


# --- summaries -------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    idx = min(len(v) - 1, max(0, math.ceil(q * len(v)) - 1))
    return v[idx]


def _ratio(num: float, den: float, digits: int = 4) -> float | None:
    """num / den rounded, or None when there is nothing to divide by."""
    return round(num / den, digits) if den else None


def _kind_figures(kind: IncidentKind, outcomes: list[LabelOutcome]) -> dict[str, Any]:
    """Recall, time to detect and kind accuracy over one kind's labels."""
    det = [lo for lo in outcomes if lo.detected]
    ttd = [lo.ttd_min for lo in det if lo.ttd_min is not None]
    return {
        "labels": len(outcomes),
        "detected": len(det),
        "recall": round(len(det) / len(outcomes), 4),
        "ttd_median_min": _pct(ttd, 0.5),
        "ttd_p95_min": _pct(ttd, 0.95),
        "kind_accuracy": _ratio(sum(lo.kind is kind for lo in det), len(det)),
    }


def _alert_figures(results: Sequence[ScenarioResult]) -> dict[str, Any]:
    """Precision and false alerts: per week of the event scenarios, and per watch-week of the clean ones."""
    clean = [r for r in results if r.clean]
    clean_weeks = sum(r.hours for r in clean) / 168
    event_weeks = sum(r.hours for r in results if not r.clean) / 168
    incidents = sum(r.incidents for r in results if not r.clean)
    matched = sum(r.matched_incidents for r in results if not r.clean)
    return {
        "precision": _ratio(matched, incidents),
        "incidents": incidents,
        "false_alerts_in_event_scenarios_per_week": _ratio(incidents - matched, event_weeks, 3),
        "clean_weeks": round(clean_weeks, 2),
        "false_alerts_per_watch_week": _ratio(sum(r.false_alerts for r in clean), clean_weeks, 3),
    }


def summarize(results: Sequence[ScenarioResult], native_step_min: float = 5.0) -> dict[str, Any]:
    """Overall figures over scenarios (clean ones count towards false alerts per watch-week only)."""
    outcomes = [lo for r in results if not r.clean for lo in r.labels]
    detected = [lo for lo in outcomes if lo.detected]
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in IncidentKind:
        ks = [lo for lo in outcomes if lo.label.kind is kind]
        if ks:
            by_kind[kind.value] = _kind_figures(kind, ks)
    ttd = [lo.ttd_min for lo in detected if lo.ttd_min is not None]
    nationwide = [
        lo.ttd_min for lo in detected if lo.label.kind is IncidentKind.nationwide_outage and lo.ttd_min is not None
    ]

    def group_recall(kinds: tuple[IncidentKind, ...]) -> float | None:
        g = [lo for lo in outcomes if lo.label.kind in kinds]
        return _ratio(sum(lo.detected for lo in g), len(g))

    return {
        "labels": len(outcomes),
        "detected": len(detected),
        "recall": _ratio(len(detected), len(outcomes)),
        "recall_nationwide_regional": group_recall((IncidentKind.nationwide_outage, IncidentKind.regional_outage)),
        "recall_service_block": group_recall((IncidentKind.service_block,)),
        **_alert_figures(results),
        "ttd_median_min": _pct(ttd, 0.5),
        "ttd_p95_min": _pct(ttd, 0.95),
        "nationwide_max_ttd_steps": _ratio(max(nationwide), native_step_min, 2) if nationwide else None,
        "kind_accuracy": _ratio(sum(lo.kind is lo.label.kind for lo in detected), len(detected)),
        "cause_accuracy": _ratio(sum(lo.cause is lo.label.cause for lo in detected), len(detected)),
        "by_kind": by_kind,
    }


def scenario_line(r: ScenarioResult) -> str:
    if r.clean:
        return f"{r.name:<28} clean {r.hours / 24:.1f} d: {r.incidents} false alert(s)"
    det = sum(lo.detected for lo in r.labels)
    ttd = [lo.ttd_min for lo in r.labels if lo.ttd_min is not None]
    kind_ok = sum(lo.kind is lo.label.kind for lo in r.labels if lo.detected)
    cause_ok = sum(lo.cause is lo.label.cause for lo in r.labels if lo.detected)
    prec = f"{r.matched_incidents / r.incidents:.2f}" if r.incidents else "-"
    return (
        f"{r.name:<28} recall {det}/{len(r.labels)}  precision {prec} ({r.incidents} incidents)  "
        f"ttd median {_pct(ttd, 0.5)} min p95 {_pct(ttd, 0.95)} min  kind {kind_ok}/{det}  cause {cause_ok}/{det}"
    )


def responder_verdicts(incidents: Sequence[Incident]) -> dict[str, Any]:
    """What responders said of live incidents (Slack actions, `pollwatch override`): the labels live use gives.

    An incident closed as a false alarm was not an outage; a cause a responder confirmed or set is
    the cause. `precision_judged` is the share of judged incidents that were outages;
    `cause_accuracy_judged` the share of responder-set causes that attribution had right. The
    `labels` list is what calibration can take (incident, verdict, attributed and responder cause).
    """
    labels = []
    for inc in incidents:
        fa = inc.false_alarm
        prev = (inc.override or {}).get("previous") or {}
        if fa is None and not inc.override:
            continue
        labels.append(
            {
                "incident": inc.id,
                "watch": inc.watch,
                "kind": inc.kind.value,
                "start": iso(inc.start),
                "verdict": "false_alarm"
                if fa
                else ("cause_confirmed" if prev.get("cause") == inc.override["cause"] else "cause_changed"),
                "attributed_cause": prev.get("cause"),
                "attributed_confidence": prev.get("confidence"),
                "responder_cause": (inc.override or {}).get("cause"),
                "by": (fa or inc.override or {}).get("by"),
                "why": (fa or inc.override or {}).get("why"),
            }
        )
    judged = len(labels)
    false_alarms = sum(1 for lb in labels if lb["verdict"] == "false_alarm")
    causes = [lb for lb in labels if lb["verdict"] != "false_alarm" and lb["attributed_cause"]]
    right = sum(1 for lb in causes if lb["verdict"] == "cause_confirmed")
    return {
        "incidents": len(incidents),
        "judged": judged,
        "false_alarms": false_alarms,
        "precision_judged": round(1 - false_alarms / judged, 3) if judged else None,
        "causes_judged": len(causes),
        "cause_accuracy_judged": round(right / len(causes), 3) if causes else None,
        "labels": labels,
    }
