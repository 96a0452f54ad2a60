"""Detection: each series against its baseline, stepped tick by tick with explicit state.

`detect()` is a fold over time: it takes the detector state, the tick times and the
observations visible by then, and returns the new state plus anomaly events (opened, updated,
closed). Run once per live tick or over a whole range in one call, it gives the same events,
so a replay reproduces what live ticks would have said.

This first version is a moving-median detector with IODA-style warm-up, minimum prediction,
inpainting (anomalous points feed the expectation, not the actual, into the history for at most
`inpaint_max`), and debouncing (`min_duration` before opening, `recovery` before closing).
Missing data (value null, or a rate from fewer than `min_count` measurements) never opens an
anomaly; a silence longer than three steps is reported as a gap.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from statistics import median
from typing import Any

from pydantic import BaseModel, Field

from pollwatch.models import Anomaly, AnomalyEvent, Direction, Gap, Observation, stable_id
from pollwatch.playbook import SignalConfig, Watch


def _ts(dt: datetime) -> float:
    return dt.timestamp()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


class SeriesState(BaseModel):
    """What the detector remembers about one series between ticks."""

    times: list[float] = Field(default_factory=list)  # history (inpainted) within the window
    values: list[float] = Field(default_factory=list)
    first_seen: float | None = None
    last_time: float | None = None  # newest point processed (with or without data)
    last_data: float | None = None  # newest point with usable data
    bad_since: float | None = None
    good_since: float | None = None
    open: dict[str, Any] | None = None  # the open Anomaly, as JSON


class DetectorState(BaseModel):
    series: dict[str, SeriesState] = Field(default_factory=dict)
    last_tick: datetime | None = None


class DetectResult(BaseModel):
    state: DetectorState
    events: list[AnomalyEvent] = Field(default_factory=list)
    gaps: list[Gap] = Field(default_factory=list)
    judged: int = 0


def wilson_lower(rate: float, n: int, z: float = 1.96) -> float:
    """Lower bound of a rate's 95% Wilson interval: 1 failure in 3 tests is weak evidence, 7 in 8 is strong."""
    if n <= 0:
        return 0.0
    denom = 1 + z * z / n
    centre = rate + z * z / (2 * n)
    margin = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / denom)


def _judge(cfg: SignalConfig, value: float, expected: float, count: int | None = None) -> tuple[str | None, float]:
    """(level or None, depth) of one point against its expectation.

    A rate with a measurement count is judged by the lower bound of its confidence interval, so
    a rate from 2 measurements is not taken for a rate from 200.
    """
    if cfg.direction is Direction.drop:
        ratio = value / expected if expected > 0 else 1.0
        depth = max(0.0, 1.0 - ratio)
        if ratio < cfg.critical:
            return "critical", depth
        if ratio < cfg.warning:
            return "warning", depth
        return None, depth
    if cfg.mode == "delta":
        if count is not None and 0.0 <= value <= 1.0:
            value = wilson_lower(value, count)
        rise = value - expected
        if rise >= cfg.critical:
            return "critical", rise
        if rise >= cfg.warning:
            return "warning", rise
        return None, max(rise, 0.0)
    ratio = value / expected if expected > 0 else (float("inf") if value > 0 else 1.0)
    depth = max(0.0, ratio - 1.0)
    if ratio >= cfg.critical:
        return "critical", depth
    if ratio >= cfg.warning:
        return "warning", depth
    return None, depth


def _usable(cfg: SignalConfig, o: Observation) -> bool:
    if o.value is None:
        return False
    if cfg.min_count and (o.count is None or o.count < cfg.min_count):
        return False
    return True


def detect(
    watch: Watch,
    state: DetectorState | None,
    ticks: Sequence[datetime],
    observations: Iterable[Observation],
) -> DetectResult:
    """Advance the detectors through `ticks`, judging each observation once it is visible.

    An observation is visible at a tick when `time + lag <= tick`. Observations already
    processed (at or before a series' last processed time) are ignored, so feeding overlapping
    batches is harmless.
    """
    state = state.model_copy(deep=True) if state else DetectorState()
    events: list[AnomalyEvent] = []
    gaps: list[Gap] = []
    judged = 0
    by_signal: dict[str, list[Observation]] = {}
    for o in observations:
        if o.signal in watch.signals:
            by_signal.setdefault(o.signal, []).append(o)
    pending = sorted(
        (o for obs in by_signal.values() for o in obs),
        key=lambda o: (o.time + watch.signals[o.signal].lag, o.series_key),
    )
    idx = 0
    for tick in ticks:
        tick_ts = _ts(tick)
        while idx < len(pending):
            o = pending[idx]
            cfg = watch.signals[o.signal]
            if _ts(o.time + cfg.lag) > tick_ts:
                break
            idx += 1
            key = o.series_key
            s = state.series.get(key)
            if s is None:
                s = state.series[key] = SeriesState()
            t = _ts(o.time)
            if s.last_time is not None and t <= s.last_time:
                continue
            s.last_time = t
            if not _usable(cfg, o):
                continue
            judged += 1
            step = cfg.step.total_seconds()
            if s.last_data is not None and t - s.last_data > 3 * step:
                gaps.append(Gap(source=o.source, signal=o.signal, entity=o.entity_key, start=_dt(s.last_data + step),
                                end=_dt(t - step), reason="no data from the source for this series"))
            s.last_data = t
            if s.first_seen is None:
                s.first_seen = t
            _step_series(watch, cfg, s, o, t, tick, events)
        state.last_tick = tick
    return DetectResult(state=state, events=events, gaps=gaps, judged=judged)


def _step_series(watch: Watch, cfg: SignalConfig, s: SeriesState, o: Observation, t: float, tick: datetime,
                 events: list[AnomalyEvent]) -> None:
    window = cfg.window.total_seconds()
    # drop history that left the window
    cut = bisect.bisect_left(s.times, t - window)
    if cut:
        del s.times[:cut]
        del s.values[:cut]
    value = float(o.value)  # type: ignore[arg-type]
    warmed = s.first_seen is not None and t - s.first_seen >= cfg.warm_up.total_seconds() and len(s.values) >= 3
    expected = median(s.values) if warmed else None
    level, depth = (None, 0.0)
    if expected is not None and expected >= cfg.min_prediction:
        level, depth = _judge(cfg, value, expected, o.count)

    # inpainting: anomalous points feed the expectation into the history, for a bounded time
    history_value = value
    if level is not None and expected is not None:
        since = s.bad_since if s.bad_since is not None else t
        if t - since < cfg.inpaint_max.total_seconds():
            history_value = expected
    s.times.append(t)
    s.values.append(history_value)

    step_min = cfg.step.total_seconds() / 60
    if level is not None:
        s.good_since = None
        if s.bad_since is None:
            s.bad_since = t
        if s.open is None:
            if t - s.bad_since >= cfg.min_duration.total_seconds():
                entity = o.entity
                anomaly = Anomaly(
                    id=stable_id(watch.name, o.series_key, s.bad_since),
                    watch=watch.name, source=o.source, signal=o.signal, family=watch.family_of(o.signal, o.service),
                    entity=entity, direction=cfg.direction, start=_dt(s.bad_since), detected_at=tick, level=level,
                    expected=expected, observed=value, depth=round(depth, 4), severity=round(_pct(cfg, depth) * step_min, 2),
                    points=1, evidence={"threshold": cfg.critical if level == "critical" else cfg.warning, "mode": cfg.mode,
                                        "count": o.count},
                )
                s.open = anomaly.model_dump(mode="json")
                events.append(AnomalyEvent(tick=tick, change="opened", anomaly=anomaly))
        else:
            anomaly = Anomaly.model_validate(s.open)
            escalated = level == "critical" and anomaly.level != "critical"
            anomaly.level = "critical" if escalated else anomaly.level
            anomaly.depth = round(max(anomaly.depth, depth), 4)
            anomaly.observed = value
            anomaly.expected = expected
            anomaly.severity = round(anomaly.severity + _pct(cfg, depth) * step_min, 2)
            anomaly.points += 1
            s.open = anomaly.model_dump(mode="json")
            if escalated:
                events.append(AnomalyEvent(tick=tick, change="updated", anomaly=anomaly))
    else:
        s.bad_since = None
        if s.open is not None:
            if s.good_since is None:
                s.good_since = t
            if t - s.good_since >= cfg.recovery.total_seconds():
                anomaly = Anomaly.model_validate(s.open)
                anomaly.end = _dt(s.good_since)
                anomaly.observed = value
                s.open = None
                s.good_since = None
                events.append(AnomalyEvent(tick=tick, change="closed", anomaly=anomaly))


def _pct(cfg: SignalConfig, depth: float) -> float:
    """Depth as a percentage for severity (drop %, or rise % of the warning threshold)."""
    if cfg.direction is Direction.drop:
        return depth * 100
    return min(depth, 10.0) * 100


def open_anomalies(state: DetectorState) -> list[Anomaly]:
    return [Anomaly.model_validate(s.open) for s in state.series.values() if s.open is not None]

