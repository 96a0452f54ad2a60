"""Judging one point against its expectation, and the statistics the detectors share."""

from __future__ import annotations

import math
from collections.abc import Iterable

from pollwatch.detect.state import Cfg
from pollwatch.models import Anomaly, Direction
from pollwatch.playbook import SignalConfig


def wilson_lower(rate: float, n: int, z: float = 1.96) -> float:
    """Lower bound of a rate's 95% Wilson interval: 1 failure in 3 tests is weak evidence, 7 in 8 is strong."""
    if n <= 0:
        return 0.0
    denom = 1 + z * z / n
    centre = rate + z * z / (2 * n)
    margin = z * math.sqrt(max(rate * (1 - rate), 0.0) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / denom)


def wilson_upper(rate: float, n: float, z: float = 1.96) -> float:
    """Upper bound of a rate's 95% Wilson interval (0 failures in 16 tests: at most 19 %)."""
    if n <= 0:
        return 1.0
    return 1.0 - wilson_lower(1.0 - rate, n, z)


def critical_limit(cfg: SignalConfig | Cfg, expected: float) -> float:
    """Where a point against `expected` turns critical: the line `judge` draws (drops are always judged as ratios)."""
    if cfg.direction is Direction.drop or cfg.mode != "delta":
        return expected * cfg.critical
    return expected + cfg.critical


def judge(
    cfg: SignalConfig | Cfg, value: float, expected: float, count: int | None = None, warning: float | None = None
) -> tuple[str | None, float]:
    """(level or None, depth) of one point against its expectation.

    A rate with a measurement count is judged by the lower bound of its confidence interval, so
    a rate from 2 measurements is not taken for a rate from 200. `warning` overrides the
    playbook's warning threshold (used for exit thresholds).
    """
    warn = cfg.warning if warning is None else warning
    if cfg.direction is Direction.drop:
        ratio = value / expected if expected > 0 else 1.0
        depth = 1.0 - ratio if ratio < 1.0 else 0.0
        if ratio < cfg.critical:
            return "critical", depth
        if ratio < warn:
            return "warning", depth
        return None, depth
    if cfg.mode == "delta":
        if count is not None and 0.0 <= value <= 1.0:
            value = wilson_lower(value, count)
        rise = value - expected
        if rise >= cfg.critical:
            return "critical", rise
        if rise >= warn:
            return "warning", rise
        return None, max(rise, 0.0)
    ratio = value / expected if expected > 0 else (float("inf") if value > 0 else 1.0)
    depth = max(0.0, ratio - 1.0) if math.isfinite(ratio) else 10.0
    if ratio >= cfg.critical:
        return "critical", depth
    if ratio >= warn:
        return "warning", depth
    return None, depth


def median(vals: list[float]) -> float:
    n = len(vals)
    mid = n // 2
    return vals[mid] if n % 2 else (vals[mid - 1] + vals[mid]) / 2


def pct(c: SignalConfig | Cfg, depth: float) -> float:
    """Depth as a percentage for severity (drop %, or rise % of the expectation / of the rate)."""
    if c.direction is Direction.drop:
        return depth * 100
    return min(depth, 10.0) * 100


def combined_severity(anomalies: Iterable[Anomaly]) -> float:
    """IODA's event score: per source the sum of (drop % x minutes), multiplied across sources,
    so agreement between independent sources ranks an incident higher. A source is one signal of
    one observatory (IODA's BGP, active probing and telescope are independent measurements)."""
    per_source: dict[tuple[str, str], float] = {}
    for a in anomalies:
        key = (a.source, a.signal)
        per_source[key] = per_source.get(key, 0.0) + a.severity
    if not per_source:
        return 0.0
    out = 1.0
    for v in per_source.values():
        out *= max(v, 1.0)
    return out


def judge_point(c: Cfg, value: float, expected: float, count: int | None) -> tuple[str | None, float, bool]:
    """(level, depth, recovered): the enter thresholds, and the exit threshold for hysteresis."""
    level, depth = judge(c, value, expected, count)
    if level is not None:
        return level, depth, False
    if c.exit == c.warning:
        return None, depth, True
    back, _ = judge(c, value, expected, count, warning=c.exit)
    return None, depth, back is None
