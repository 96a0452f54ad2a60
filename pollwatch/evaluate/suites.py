"""The evaluation suites: seeded simulator scenarios (generated, hard, clean weeks) and the real events
through pollwatch.adapters, each scored; for real cases, what was visible when and on which network."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pollwatch import progress
from pollwatch.evaluate.scoring import KIND_FAMILY, ScenarioResult, overlaps, run_watch, score
from pollwatch.models import Anomaly, Family, Incident, IncidentKind, Observation, iso
from pollwatch.playbook import Watch
from pollwatch.simulate import EventSpec, Label, random_events, simulate

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
