"""Baselines: each series' expected level and spread over a history window, with its coverage.

A baseline is usable when the window had enough data (coverage at least `min_coverage` of the
points the signal's native step promises) and a non-trivial level; otherwise it is a blind spot
and says why. The detectors keep their own moving expectations; these baselines are what the
pre-election phase persists and what the baseline-health artifact and reports show.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from statistics import median

from pollwatch.models import Baseline, Observation
from pollwatch.playbook import Watch


def compute_baselines(watch: Watch, observations: Iterable[Observation], window_end: datetime,
                      min_coverage: float = 0.5) -> list[Baseline]:
    """One Baseline per (source, signal, entity) seen in the observations, over each signal's window."""
    series: dict[tuple[str, str, str], list[Observation]] = defaultdict(list)
    for o in observations:
        cfg = watch.signals.get(o.signal)
        if cfg is None or o.time >= window_end or o.time < window_end - cfg.window:
            continue
        series[(o.source, o.signal, o.entity_key)].append(o)
    out = []
    for (source, signal, entity), obs in sorted(series.items()):
        cfg = watch.signals[signal]
        window_start = window_end - cfg.window
        values = [o.value for o in obs if o.value is not None and (not cfg.min_count or (o.count or 0) >= cfg.min_count)]
        promised = max(int(cfg.window / cfg.step), 1)
        coverage = min(len(values) / promised, 1.0)
        expected = median(values) if values else None
        spread = median(abs(v - expected) for v in values) if values and expected is not None else None
        reason = ""
        if coverage < min_coverage:
            reason = f"only {coverage:.0%} of the window has data (need {min_coverage:.0%})"
        elif expected is None or (cfg.direction.value == "drop" and expected <= cfg.min_prediction):
            reason = "expected level too small to judge drops"
        out.append(Baseline(
            source=source, signal=signal, entity=entity, expected=expected, spread=spread, window_start=window_start,
            window_end=window_end, points=len(values), coverage=round(coverage, 4), usable=not reason, reason=reason,
        ))
    return out
