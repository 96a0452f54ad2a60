"""Detection: each series against its expectation, stepped tick by tick with explicit state.

`detect()` is a fold over time: it takes the detector state, the tick times and the
observations visible by then, and returns the new state plus anomaly events (opened, updated,
closed) and data gaps. Run once per live tick or over a whole range in one call, it gives the
same events, so a replay reproduces what live ticks said. Each series is judged by the
detector its signal names in the playbook (`SignalConfig.detector`, thresholds and `options`):

- `moving_median` (IODA's production detector): expectation = median of a sliding history
  window (`window`) of the series on its native-step grid, after `warm_up`; no judgement while
  the expectation is below `min_prediction`; *inpainting*: a point whose ratio to the
  expectation is below `inpaint_low` (0.8) or above `inpaint_high` (2.0) feeds the expectation,
  not itself, into the history, for at most `inpaint_max`, after which the new level becomes
  normal. Warning/critical are ratio thresholds (drop) or rise thresholds (rise).
- `seasonal` (Cloudflare Radar): expectation = median, at this time of day, of the `k` (6)
  24-hour periods of the last `days` (28) most similar to the last 24 hours; separate enter
  (`warning`) and exit (`options.exit`) thresholds. History is kept per `bucket` (1 h).
- `cusum` (OONI's event detector) for failure rates: two-sided CUSUM with mu0 0.0, mu1 0.7,
  v 0.7, threshold h 7.0, each hour weighted by its measurement count, accumulators decaying by
  0.5^(gap/48 h) after more than 24 h without data. Crossing h upwards opens a block anomaly
  (start = when the accumulator last left zero); crossing it downwards closes it (unblock).
  Optional fast path (`options.fast`, default on): an hour whose failure rate's Wilson lower
  bound is already beyond `warning` opens the block at once.
- `threshold`: fixed thresholds against a fixed expectation (`options.expected`, default 0 in
  delta mode and 1 in ratio mode), no history.

Debounce and hysteresis: an anomaly opens after `min_duration` of consecutive anomalous points
and closes after `recovery` of points back past the exit threshold (`options.exit`, default
the warning threshold for moving_median/threshold). Severity of an anomaly = sum over its
points of (drop % x minutes); `combined_severity()` multiplies the per-source sums.

Missing data (value null, or a rate from fewer than `min_count` measurements) never opens or
closes an anomaly and never enters a history; silence longer than `options.gap_steps` (3)
native steps is reported as a Gap. The state is compact JSON: bounded histories on a grid of
slots (no timestamps), running accumulators, the open anomaly.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr

from pollwatch.models import Anomaly, AnomalyEvent, Direction, Gap, Observation, entity_key, series_key, stable_id
from pollwatch.playbook import SignalConfig, Watch

DAY = 86400.0

# Detector options and their defaults (SignalConfig.options); docs/detection.md explains each.
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "moving_median": {"inpaint_low": 0.8, "inpaint_high": 2.0, "exit": None, "gap_steps": 3},
    "seasonal": {"k": 6, "days": 28, "bucket": 3600, "min_days": 3, "exit": None, "inpaint_low": 0.8, "inpaint_high": 2.0,
                 "gap_steps": 3},
    "cusum": {"mu0": 0.0, "mu1": 0.7, "v": 0.7, "h": 7.0, "decay_after": 86400, "half_life": 172800, "weight_by_count": True,
              "fast": True, "gap_steps": 3},
    "threshold": {"expected": None, "exit": None, "gap_steps": 3},
}


def _ts(dt: datetime) -> float:
    return dt.timestamp()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def options(cfg: SignalConfig) -> dict[str, Any]:
    """The signal's detector options merged over the detector's defaults."""
    return {**DEFAULT_OPTIONS[cfg.detector], **cfg.options}


class SeriesState(BaseModel):
    """What the detector remembers about one series between ticks (kept small: it is JSON per tick)."""

    first_seen: float | None = None
    last_time: float | None = None  # newest point processed (with or without data)
    last_data: float | None = None  # newest point with usable data
    # moving median: the (inpainted) history on the native-step grid, hist[i] is slot h0 + i
    h0: int | None = None
    hist: list[float | None] = Field(default_factory=list)
    paint_since: float | None = None  # start of the current run of inpainted points
    # debounce
    bad_since: float | None = None
    good_since: float | None = None
    open: dict[str, Any] | None = None  # the open Anomaly, as JSON
    # cusum accumulators (up: towards blocked, down: back to normal) and when each left zero
    up: float = 0.0
    down: float = 0.0
    up_since: float | None = None
    down_since: float | None = None
    # seasonal: bucket profile per day (day index -> one value per bucket), the bucket being filled
    days: dict[str, list[float | None]] = Field(default_factory=dict)
    acc: list[float] | None = None  # [day, bucket, sum, n]
    similar: list[int] | None = None  # chosen similar days for `similar_at`
    similar_at: list[int] | None = None  # [day, bucket]

    _sorted: list[float] | None = PrivateAttr(default=None)

    def sorted_values(self) -> list[float]:
        if self._sorted is None:
            self._sorted = sorted(v for v in self.hist if v is not None)
        return self._sorted


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
    margin = z * math.sqrt(max(rate * (1 - rate), 0.0) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / denom)


def _judge(cfg: SignalConfig, value: float, expected: float, count: int | None = None,
           warning: float | None = None) -> tuple[str | None, float]:
    """(level or None, depth) of one point against its expectation.

    A rate with a measurement count is judged by the lower bound of its confidence interval, so
    a rate from 2 measurements is not taken for a rate from 200. `warning` overrides the
    playbook's warning threshold (used for exit thresholds).
    """
    warn = cfg.warning if warning is None else warning
    if cfg.direction is Direction.drop:
        ratio = value / expected if expected > 0 else 1.0
        depth = max(0.0, 1.0 - ratio)
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


def _exit_ok(cfg: SignalConfig, opts: dict[str, Any], value: float, expected: float, count: int | None) -> bool:
    """Whether a point is back to normal by the exit threshold (hysteresis)."""
    ex = opts.get("exit")
    if ex is None:
        if cfg.detector == "seasonal":
            ex = (1 + cfg.warning) / 2 if cfg.direction is Direction.drop else cfg.warning
        else:
            ex = cfg.warning
    level, _ = _judge(cfg, value, expected, count, warning=ex)
    return level is None


def _usable(cfg: SignalConfig, value: float | None, count: int | None) -> bool:
    if value is None:
        return False
    if cfg.min_count and (count is None or count < cfg.min_count):
        return False
    return True


def _median(vals: list[float]) -> float:
    n = len(vals)
    mid = n // 2
    return vals[mid] if n % 2 else (vals[mid - 1] + vals[mid]) / 2


def _pct(cfg: SignalConfig, depth: float) -> float:
    """Depth as a percentage for severity (drop %, or rise % of the expectation / of the rate)."""
    if cfg.direction is Direction.drop:
        return depth * 100
    return min(depth, 10.0) * 100


def combined_severity(anomalies: Iterable[Anomaly]) -> float:
    """IODA's event score: per source the sum of (drop % x minutes), multiplied across sources,
    so agreement between independent sources ranks an incident higher."""
    per_source: dict[str, float] = {}
    for a in anomalies:
        per_source[a.source] = per_source.get(a.source, 0.0) + a.severity
    if not per_source:
        return 0.0
    out = 1.0
    for v in per_source.values():
        out *= max(v, 1.0)
    return out


class _Series:
    """One series' points for this call, in time order, with what it needs to build anomalies."""

    __slots__ = ("key", "meta", "cfg", "opts", "points", "idx")

    def __init__(self, key: str, meta: Observation, cfg: SignalConfig, opts: dict[str, Any]):
        self.key, self.meta, self.cfg, self.opts = key, meta, cfg, opts
        self.points: list[tuple[float, float | None, int | None]] = []
        self.idx = 0


def detect(
    watch: Watch,
    state: DetectorState | None,
    ticks: Sequence[datetime],
    observations: Iterable[Observation],
) -> DetectResult:
    """Advance the detectors through `ticks`, judging each observation once it is visible.

    An observation is visible at a tick when `time + lag <= tick`. Observations already
    processed (at or before a series' last processed time) are ignored, so feeding overlapping
    batches is harmless. Within a tick, events come in order of the observation's visible time,
    then series key (the same whether the tick runs alone or inside a replay).
    """
    state = state.model_copy(deep=True) if state else DetectorState()
    events: list[AnomalyEvent] = []
    gaps: list[Gap] = []
    judged = 0
    by_key: dict[tuple[Any, ...], _Series] = {}
    opts_cache: dict[str, dict[str, Any]] = {}
    signals = watch.signals
    for o in observations:
        cfg = signals.get(o.signal)
        if cfg is None:
            continue
        k = (o.source, o.signal, o.country, o.region, o.asn, o.service)
        ser = by_key.get(k)
        if ser is None:
            if o.signal not in opts_cache:
                opts_cache[o.signal] = options(cfg)
            ser = by_key[k] = _Series(series_key(o.source, o.signal, entity_key(o.country, o.region, o.asn, o.service)), o, cfg,
                                      opts_cache[o.signal])
        ser.points.append((o.time.timestamp(), o.value, o.count))
    series = sorted(by_key.values(), key=lambda s: s.key)
    for ser in series:
        ser.points.sort(key=lambda p: p[0])
    lags = {name: cfg.lag.total_seconds() for name, cfg in signals.items()}
    for tick in ticks:
        tick_ts = _ts(tick)
        tick_events: list[tuple[float, str, int, AnomalyEvent]] = []
        tick_gaps: list[tuple[float, str, Gap]] = []
        for ser in series:
            pts = ser.points
            if ser.idx >= len(pts):
                continue
            lag = lags[ser.meta.signal]
            if pts[ser.idx][0] + lag > tick_ts:
                continue
            s = state.series.get(ser.key)
            if s is None:
                s = state.series[ser.key] = SeriesState()
            cfg = ser.cfg
            step = cfg.step.total_seconds()
            while ser.idx < len(pts) and pts[ser.idx][0] + lag <= tick_ts:
                t, value, count = pts[ser.idx]
                ser.idx += 1
                if s.last_time is not None and t <= s.last_time:
                    continue
                s.last_time = t
                if not _usable(cfg, value, count):
                    continue
                judged += 1
                if s.last_data is not None and t - s.last_data > ser.opts.get("gap_steps", 3) * step:
                    tick_gaps.append((t + lag, ser.key, Gap(
                        source=ser.meta.source, signal=ser.meta.signal, entity=ser.meta.entity_key, start=_dt(s.last_data + step),
                        end=_dt(t - step), reason="no data from the source for this series")))
                if s.first_seen is None:
                    s.first_seen = t
                out: list[AnomalyEvent] = []
                STEPPERS[cfg.detector](watch, ser, s, t, float(value), count, tick, out)  # type: ignore[arg-type]
                s.last_data = t
                for ev in out:
                    tick_events.append((t + lag, ser.key, len(tick_events), ev))
        tick_events.sort(key=lambda x: (x[0], x[1], x[2]))
        events.extend(ev for *_, ev in tick_events)
        tick_gaps.sort(key=lambda x: (x[0], x[1]))
        gaps.extend(g for *_, g in tick_gaps)
        state.last_tick = tick
    return DetectResult(state=state, events=events, gaps=gaps, judged=judged)


# --- anomaly lifecycle shared by the detectors -----------------------------------------------


def _open(watch: Watch, ser: _Series, s: SeriesState, start: float, tick: datetime, level: str, expected: float | None,
          value: float, depth: float, count: int | None, out: list[AnomalyEvent], **evidence: Any) -> None:
    cfg, o = ser.cfg, ser.meta
    step_min = cfg.step.total_seconds() / 60
    anomaly = Anomaly(
        id=stable_id(watch.name, ser.key, start),
        watch=watch.name, source=o.source, signal=o.signal, family=watch.family_of(o.signal, o.service),
        entity=o.entity, direction=cfg.direction, start=_dt(start), detected_at=tick, level=level,
        expected=expected, observed=value, depth=round(depth, 4), severity=round(_pct(cfg, depth) * step_min, 2),
        points=1, evidence={"detector": cfg.detector, "threshold": cfg.critical if level == "critical" else cfg.warning,
                            "mode": cfg.mode, "count": count, **evidence},
    )
    s.open = anomaly.model_dump(mode="json")
    out.append(AnomalyEvent(tick=tick, change="opened", anomaly=anomaly))


def _extend(ser: _Series, s: SeriesState, tick: datetime, level: str | None, expected: float | None, value: float,
            depth: float, out: list[AnomalyEvent]) -> None:
    """Another anomalous point of the open anomaly: deeper, longer, maybe escalated."""
    assert s.open is not None
    cfg = ser.cfg
    a = s.open
    escalated = level == "critical" and a["level"] != "critical"
    if escalated:
        a["level"] = "critical"
    a["depth"] = round(max(a["depth"], depth), 4)
    a["observed"] = value
    a["expected"] = expected
    a["severity"] = round(a["severity"] + _pct(cfg, depth) * cfg.step.total_seconds() / 60, 2)
    a["points"] += 1
    if escalated:
        out.append(AnomalyEvent(tick=tick, change="updated", anomaly=Anomaly.model_validate(a)))


def _close(s: SeriesState, end: float, tick: datetime, value: float, out: list[AnomalyEvent]) -> None:
    assert s.open is not None
    anomaly = Anomaly.model_validate(s.open)
    anomaly.end = _dt(end)
    anomaly.observed = value
    s.open = None
    s.good_since = None
    out.append(AnomalyEvent(tick=tick, change="closed", anomaly=anomaly))


def _debounce(watch: Watch, ser: _Series, s: SeriesState, t: float, tick: datetime, level: str | None, recovered: bool,
              expected: float | None, value: float, depth: float, count: int | None, out: list[AnomalyEvent]) -> None:
    """Open after `min_duration` of anomalous points, close after `recovery` of recovered ones."""
    cfg = ser.cfg
    if level is not None:
        s.good_since = None
        if s.bad_since is None:
            s.bad_since = t
        if s.open is None:
            if t - s.bad_since >= cfg.min_duration.total_seconds():
                _open(watch, ser, s, s.bad_since, tick, level, expected, value, depth, count, out)
        else:
            _extend(ser, s, tick, level, expected, value, depth, out)
        return
    s.bad_since = None
    if s.open is None:
        return
    if not recovered:  # between the enter and exit thresholds: still the same anomaly
        s.good_since = None
        _extend(ser, s, tick, None, expected, value, depth, out)
        return
    if s.good_since is None:
        s.good_since = t
    if t - s.good_since >= cfg.recovery.total_seconds():
        _close(s, s.good_since, tick, value, out)


def _inpaint(cfg: SignalConfig, opts: dict[str, Any], s: SeriesState, t: float, value: float, expected: float | None,
             level: str | None) -> float:
    """The value to remember: the expectation instead of an anomalous point, for at most `inpaint_max`."""
    if expected is None:
        s.paint_since = None
        return value
    if cfg.mode == "delta":
        odd = level is not None
    else:
        ratio = value / expected if expected > 0 else 1.0
        odd = level is not None or ratio < opts["inpaint_low"] or ratio > opts["inpaint_high"]
    if not odd:
        s.paint_since = None
        return value
    if s.paint_since is None:
        s.paint_since = t
    if t - s.paint_since < cfg.inpaint_max.total_seconds():
        return expected
    return value  # anomalous for longer than inpaint_max: the level shift becomes the new normal


# --- moving median (IODA) --------------------------------------------------------------------


def _step_moving_median(watch: Watch, ser: _Series, s: SeriesState, t: float, value: float, count: int | None,
                        tick: datetime, out: list[AnomalyEvent]) -> None:
    cfg, opts = ser.cfg, ser.opts
    step = cfg.step.total_seconds()
    slot = int(t // step)
    wslots = max(int(cfg.window.total_seconds() // step), 1)
    srt = s.sorted_values()
    if s.h0 is None or slot - s.h0 - len(s.hist) > wslots:
        s.h0, s.hist = slot, []
        srt.clear()
    elif slot < s.h0 + len(s.hist):  # a second point in the newest slot replaces the first
        old = s.hist.pop()
        if old is not None:
            del srt[bisect.bisect_left(srt, old)]
    else:
        s.hist.extend([None] * (slot - s.h0 - len(s.hist)))
    # the window is the `wslots` slots before this one
    drop = slot - wslots - s.h0
    if drop > 0:
        for old in s.hist[:drop]:
            if old is not None:
                del srt[bisect.bisect_left(srt, old)]
        del s.hist[:drop]
        s.h0 += drop
    warmed = t - (s.first_seen or t) >= cfg.warm_up.total_seconds() and len(srt) >= 3
    expected = _median(srt) if warmed else None
    level, depth, recovered = None, 0.0, True
    if expected is not None and expected >= cfg.min_prediction:
        level, depth = _judge(cfg, value, expected, count)
        recovered = level is None and _exit_ok(cfg, opts, value, expected, count)
    else:
        expected = None if expected is None or expected < cfg.min_prediction else expected
    remembered = _inpaint(cfg, opts, s, t, value, expected, level)
    s.hist.append(remembered)
    bisect.insort(srt, remembered)
    _debounce(watch, ser, s, t, tick, level, recovered, expected, value, depth, count, out)


# --- seasonal (Cloudflare Radar) -------------------------------------------------------------


def _similar_days(s: SeriesState, day: int, bucket: int, nb: int, ndays: int, k: int) -> list[int]:
    """The k past days whose 24 h before this bucket looked most like the last 24 h."""

    def window(d: int) -> list[float | None]:
        prev = s.days.get(str(d - 1)) or [None] * nb
        cur = s.days.get(str(d)) or [None] * nb
        return prev[bucket:] + cur[:bucket]

    recent = window(day)
    scored = []
    for d in range(day - ndays, day):
        prof = s.days.get(str(d))
        if prof is None or prof[bucket] is None:
            continue
        cand = window(d)
        diffs = [abs(math.log(max(a, 1e-9) / max(b, 1e-9))) for a, b in zip(recent, cand) if a is not None and b is not None]
        dist = sum(diffs) / len(diffs) if len(diffs) >= nb // 2 else float("inf")
        scored.append((dist, -d, d))
    scored.sort()
    return sorted(d for _, _, d in scored[:k])


def _step_seasonal(watch: Watch, ser: _Series, s: SeriesState, t: float, value: float, count: int | None,
                   tick: datetime, out: list[AnomalyEvent]) -> None:
    cfg, opts = ser.cfg, ser.opts
    bsize = float(opts["bucket"])
    nb = max(int(DAY // bsize), 1)
    ndays = int(opts["days"])
    day, bucket = int(t // DAY), int((t % DAY) // bsize)
    if s.acc is not None and (int(s.acc[0]), int(s.acc[1])) != (day, bucket):
        d0, b0, total, n = s.acc
        prof = s.days.setdefault(str(int(d0)), [None] * nb)
        prof[int(b0)] = total / n if n else None
        s.acc = None
        for key in [k for k in s.days if int(k) < day - ndays]:
            del s.days[key]
    expected = None
    if s.similar_at != [day, bucket]:
        s.similar = _similar_days(s, day, bucket, nb, ndays, int(opts["k"]))
        s.similar_at = [day, bucket]
    chosen = [s.days[str(d)][bucket] for d in (s.similar or []) if str(d) in s.days and s.days[str(d)][bucket] is not None]
    warmed = t - (s.first_seen or t) >= cfg.warm_up.total_seconds() and len(chosen) >= int(opts["min_days"])
    if warmed:
        expected = _median(sorted(chosen))  # type: ignore[arg-type]
    level, depth, recovered = None, 0.0, True
    if expected is not None and expected >= cfg.min_prediction:
        level, depth = _judge(cfg, value, expected, count)
        recovered = level is None and _exit_ok(cfg, opts, value, expected, count)
    else:
        expected = None
    remembered = _inpaint(cfg, opts, s, t, value, expected, level)
    if s.acc is None:
        s.acc = [day, bucket, 0.0, 0]
    s.acc[2] += remembered
    s.acc[3] += 1
    _debounce(watch, ser, s, t, tick, level, recovered, expected, value, depth, count, out)


# --- two-sided CUSUM (OONI) ------------------------------------------------------------------


def _step_cusum(watch: Watch, ser: _Series, s: SeriesState, t: float, value: float, count: int | None,
                tick: datetime, out: list[AnomalyEvent]) -> None:
    cfg, opts = ser.cfg, ser.opts
    mu0, mu1, v, h = float(opts["mu0"]), float(opts["mu1"]), float(opts["v"]), float(opts["h"])
    if s.last_data is not None and t - s.last_data > float(opts["decay_after"]):
        f = 0.5 ** ((t - s.last_data) / float(opts["half_life"]))
        s.up *= f
        s.down *= f
    weight = float(count) if opts["weight_by_count"] and count else 1.0
    inc = weight * (mu1 - mu0) / v * (value - (mu0 + mu1) / 2)
    level, depth = _judge(cfg, value, mu0, count)
    depth = max(value - mu0, 0.0)
    if s.open is None:
        s.up = max(0.0, s.up + inc)
        if s.up == 0.0:
            s.up_since = None
        elif s.up_since is None:
            s.up_since = t
        fast = bool(opts["fast"]) and level is not None
        if s.up >= h or fast:
            lvl = "critical" if value >= cfg.critical else "warning"
            _open(watch, ser, s, s.up_since if s.up_since is not None else t, tick, lvl, mu0, value, depth, count, out,
                  cusum=round(s.up, 3), h=h, fast_path=fast and s.up < h)
            s.down, s.down_since = 0.0, None
        return
    s.down = max(0.0, s.down - inc)
    if s.down == 0.0:
        s.down_since = None
    elif s.down_since is None:
        s.down_since = t
    if s.down >= h:
        _close(s, s.down_since if s.down_since is not None else t, tick, value, out)
        s.up, s.up_since, s.down, s.down_since = 0.0, None, 0.0, None
        return
    if s.down_since is None or value >= (mu0 + mu1) / 2:
        _extend(ser, s, tick, "critical" if value >= cfg.critical else None, mu0, value, depth, out)


# --- fixed thresholds ------------------------------------------------------------------------


def _step_threshold(watch: Watch, ser: _Series, s: SeriesState, t: float, value: float, count: int | None,
                    tick: datetime, out: list[AnomalyEvent]) -> None:
    cfg, opts = ser.cfg, ser.opts
    expected = opts.get("expected")
    if expected is None:
        expected = 0.0 if (cfg.direction is Direction.rise and cfg.mode == "delta") else 1.0
    expected = float(expected)
    level, depth = _judge(cfg, value, expected, count)
    recovered = level is None and _exit_ok(cfg, opts, value, expected, count)
    _debounce(watch, ser, s, t, tick, level, recovered, expected, value, depth, count, out)


STEPPERS = {
    "moving_median": _step_moving_median,
    "seasonal": _step_seasonal,
    "cusum": _step_cusum,
    "threshold": _step_threshold,
}


def open_anomalies(state: DetectorState) -> list[Anomaly]:
    return [Anomaly.model_validate(s.open) for s in state.series.values() if s.open is not None]
