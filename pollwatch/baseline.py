"""Baselines: each series' expected level and spread over a history window, with its coverage.

The pre-election phase (flows/baseline.py) computes one Baseline per (source, signal, entity):
the level the signal's detector would expect, a robust spread, how much of the window had data
and which hours of the week (or of the day, for windows under 7 days) are covered. A baseline
is usable when the window had enough data (coverage at least `min_coverage` of the points the
signal's native step promises, and at least `min_hours` of the hours covered) and a level the
detector can judge; otherwise it is a blind spot and says why. The detectors keep their own
running state (pollwatch/detect.py); baselines are what is persisted, shown in the
baseline-health artifact and used to plan around blind spots.

Expected level per detector: moving_median / threshold: median of the window (MAD spread);
seasonal: median of the daily medians (spread: median of the daily ranges); cusum: the
measurement-weighted failure rate (spread: its binomial standard deviation).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from statistics import median

from pollwatch.models import Baseline, Observation, entity_key
from pollwatch.playbook import Watch

DAYS_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _blind_hours(covered: set[int], possible: int) -> str:
    """A short description of the uncovered hours, e.g. 'Sun 02-05h, Mon 03h'."""
    missing = [h for h in range(possible) if h not in covered]
    if not missing:
        return ""
    runs: list[tuple[int, int]] = []
    for h in missing:
        if runs and h == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], h)
        else:
            runs.append((h, h))
    parts = []
    for a, b in runs[:4]:
        if possible == 168:
            da, ha, hb = DAYS_NAMES[a // 24], a % 24, b % 24
            parts.append(f"{da} {ha:02d}h" if a == b else (f"{da} {ha:02d}-{hb:02d}h" if a // 24 == b // 24 else f"{da} {ha:02d}h-{DAYS_NAMES[b // 24]} {hb:02d}h"))
        else:
            parts.append(f"{a:02d}h" if a == b else f"{a:02d}-{b:02d}h")
    return ", ".join(parts) + (" ..." if len(runs) > 4 else "")


def compute_baselines(watch: Watch, observations: Iterable[Observation], window_end: datetime,
                      min_coverage: float = 0.5, min_hours: float = 0.9) -> list[Baseline]:
    """One Baseline per (source, signal, entity) seen in the observations, over each signal's window."""
    lows = {name: window_end - cfg.window for name, cfg in watch.signals.items()}
    series: dict[tuple, list[Observation]] = defaultdict(list)
    for o in observations:
        lo = lows.get(o.signal)
        if lo is None or o.time >= window_end or o.time < lo:
            continue
        series[(o.source, o.signal, o.country, o.region, o.asn, o.service)].append(o)
    tz = watch.tz
    hour_of: dict[datetime, tuple[int, int]] = {}  # time -> (hour of week, hour of day), local time
    out = []
    for (source, signal, *ent), obs in sorted(series.items(), key=lambda kv: (kv[0][0], kv[0][1], entity_key(*kv[0][2:]))):
        entity = entity_key(*ent)
        cfg = watch.signals[signal]
        window_start = window_end - cfg.window
        good = [o for o in obs if o.value is not None and (not cfg.min_count or (o.count or 0) >= cfg.min_count)]
        values = [float(o.value) for o in good]  # type: ignore[arg-type]
        promised = max(int(cfg.window / cfg.step), 1)
        coverage = min(len(values) / promised, 1.0)
        weekly = cfg.window >= timedelta(days=7)
        possible = 168 if weekly else 24
        covered = set()
        for o in good:
            h = hour_of.get(o.time)
            if h is None:
                lt = o.time.astimezone(tz)
                h = hour_of[o.time] = (lt.weekday() * 24 + lt.hour, lt.hour)
            covered.add(h[0] if weekly else h[1])
        # hours the window cannot contain (a window shorter than a week/day) do not count against it
        span_h = int(cfg.window.total_seconds() // 3600)
        reachable = min(possible, max(span_h, 1))
        expected, spread = _level(cfg.detector, good, values)
        reason = ""
        if coverage < min_coverage:
            reason = f"only {coverage:.0%} of the window has data (need {min_coverage:.0%})"
        elif len(covered) < min_hours * reachable:
            reason = f"blind hours of the {'week' if weekly else 'day'}: {_blind_hours(covered, possible)}"
        elif expected is None or (cfg.direction.value == "drop" and expected <= cfg.min_prediction):
            reason = "expected level too small to judge drops"
        out.append(Baseline(
            source=source, signal=signal, entity=entity, expected=expected, spread=spread, window_start=window_start,
            window_end=window_end, points=len(values), coverage=round(coverage, 4), usable=not reason, reason=reason,
            hours_covered=len(covered), hours_possible=reachable, detector=cfg.detector,
        ))
    return out


def _level(detector: str, good: list[Observation], values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    if detector == "cusum":
        n = sum((o.count or 1) for o in good)
        rate = sum(float(o.value) * (o.count or 1) for o in good) / n  # type: ignore[arg-type]
        return round(rate, 6), round(math.sqrt(max(rate * (1 - rate), 0.0) / n), 6)
    if detector == "seasonal":
        by_day: dict[str, list[float]] = defaultdict(list)
        for o, v in zip(good, values):
            by_day[o.time.date().isoformat()].append(v)
        return median(median(v) for v in by_day.values()), median(max(v) - min(v) for v in by_day.values())
    expected = median(values)
    return expected, median(abs(v - expected) for v in values)


def health_rows(baselines: Iterable[Baseline]) -> list[dict]:
    """The baseline-health table: entity, signal, points, expected level, spread, usable yes/no and why."""
    return [
        {"entity": b.entity, "signal": b.signal, "detector": b.detector or "", "points": b.points,
         "expected": None if b.expected is None else round(b.expected, 3), "spread": None if b.spread is None else round(b.spread, 3),
         "coverage": f"{b.coverage:.0%}", "hours": f"{b.hours_covered}/{b.hours_possible}" if b.hours_possible else "",
         "usable": "yes" if b.usable else "no", "why": b.reason}
        for b in baselines
    ]
