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
  0.5^(gap/48 h) after more than 24 h without data. `mu0: baseline` judges each series against
  its own failure rate (mu1 = mu0 + `shift`; `v: binomial`), see `cusum_levels()`. Crossing h upwards opens a block
  anomaly
  (start = when the accumulator last left zero); crossing it downwards closes it (unblock).
  Optional fast path (`options.fast`, default on): an hour whose failure rate's Wilson lower
  bound is already beyond `warning` opens the block at once.
- `threshold`: fixed thresholds against a fixed expectation (`options.expected`, default 0 in
  delta mode and 1 in ratio mode), no history.

Debounce and hysteresis: an anomaly opens after `min_duration` of consecutive anomalous points
(`options.warning_min_duration`, if longer, while they are only warnings: a noisy series must
stay below warning for that long, while a critical drop opens at once) and closes after `recovery` of points back past
the exit threshold (`options.exit`, default
the warning threshold for moving_median/threshold). Severity of an anomaly = sum over its
points of (drop % x minutes); `combined_severity()` multiplies the per-source sums.
`options.alone_min_duration` (for a signal that is the only one covering its entities): a drop
that no other series of the country and family corroborates (starting to fall within two native
steps of it) waits, and opens alone only once critical for that long.

Missing data (value null, or a rate from fewer than `min_count` measurements) never opens or
closes an anomaly and never enters a history; silence longer than `options.gap_steps` (3)
native steps is reported as a Gap: once while it lasts (end = the tick), and complete when data
resumes (same start, so the store merges them). The state is compact JSON: bounded histories on a grid of
slots (no timestamps), running accumulators, the open anomaly.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field

from pollwatch.models import (
    Anomaly,
    AnomalyEvent,
    Direction,
    Family,
    Gap,
    Observation,
    entity_key,
    iso,
    series_key,
    stable_id,
)
from pollwatch.playbook import SignalConfig, Watch
from pollwatch.timeutil import parse_duration

DAY = 86400.0

# Detector options and their defaults (SignalConfig.options); docs/detection.md explains each.
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "moving_median": {
        "warning_min_duration": None,
        "inpaint_low": 0.8,
        "inpaint_high": 2.0,
        "exit": None,
        "gap_steps": 3,
    },
    "seasonal": {
        "warning_min_duration": None,
        "k": 6,
        "days": 28,
        "bucket": 3600,
        "min_days": 3,
        "exit": None,
        "inpaint_low": 0.8,
        "inpaint_high": 2.0,
        "gap_steps": 3,
    },
    "cusum": {
        "mu0": 0.0,
        "mu1": 0.7,
        "v": 0.7,
        "h": 7.0,
        "decay_after": 86400,
        "half_life": 172800,
        "weight_by_count": True,
        "fast": True,
        "gap_steps": 3,
        "shift": None,
        "mu0_min": 0.01,
        "baseline_min_count": 24,
        "baseline_half_life": 604800,
    },
    "threshold": {"warning_min_duration": None, "expected": None, "exit": None, "gap_steps": 3},
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
    silent: bool = False  # a running silence has been reported as a gap
    # moving median: the (inpainted) history on the native-step grid, hist[i] is slot h0 + i
    h0: int | None = None
    hist: list[float | None] = Field(default_factory=list)
    paint_since: float | None = None  # start of the current run of inpainted points
    # debounce
    bad_since: float | None = None
    good_since: float | None = None
    open: dict[str, Any] | None = None  # the open Anomaly, as JSON
    # alone_min_duration: [level, expected, value, depth, count] of a drop waiting for corroboration
    held: list[Any] | None = None
    # cusum accumulators (up: towards blocked, down: back to normal) and when each left zero
    up: float = 0.0
    down: float = 0.0
    up_since: float | None = None
    down_since: float | None = None
    # cusum with `mu0: baseline`: measurement-weighted failures and measurements, decaying with age
    base_f: float = 0.0
    base_n: float = 0.0
    pend_f: float = 0.0  # hours seen while the upward accumulator is above zero: the reference
    pend_n: float = 0.0  # takes them once it returns to zero, and drops them if a block opens
    rising: list[list[float]] | None = None  # [time, rate, count] of the hours since the upward accumulator left zero
    blk: list[float] | None = None  # [failures, measurements] of the open block: its level
    # [since, failures, measurements] of the run of hours back nearer normal than the block
    back: list[float] | None = None
    # seasonal: bucket profile per day (day index -> one value per bucket), the bucket being filled
    days: dict[str, list[float | None]] = Field(default_factory=dict)
    acc: list[float] | None = None  # [day, bucket, sum, n]
    similar: list[int] | None = None  # chosen similar days for `similar_at`
    similar_at: list[int] | None = None  # [day, bucket]


_FIELDS = tuple(SeriesState.model_fields)


class _Work:
    """A series' state while `detect()` runs: plain attributes (pydantic's are slow per point) and
    the window's values kept sorted for an O(log n) running median; written back at the end."""

    __slots__ = _FIELDS + ("srt",)

    def __init__(self, s: SeriesState | None):
        d = s.__dict__ if s is not None else SeriesState().__dict__
        for f in _FIELDS:
            v = d[f]
            setattr(self, f, v.copy() if isinstance(v, (list, dict)) else v)
        if self.open is not None:
            self.open = dict(self.open)
        if self.days:
            self.days = {k: list(v) for k, v in self.days.items()}
        self.srt: list[float] | None = None

    def sorted_values(self) -> list[float]:
        if self.srt is None:
            self.srt = sorted(v for v in self.hist if v is not None)
        return self.srt

    def to_state(self) -> SeriesState:
        return SeriesState.model_construct(**{f: getattr(self, f) for f in _FIELDS})


class _Cfg:
    """A signal's configuration with its durations in seconds and its options resolved."""

    def __init__(self, cfg: SignalConfig):
        self.cfg = cfg
        self.detector = cfg.detector
        self.direction = cfg.direction
        self.drop = cfg.direction is Direction.drop
        self.mode = cfg.mode
        self.warning, self.critical = cfg.warning, cfg.critical
        self.min_prediction, self.min_count = cfg.min_prediction, cfg.min_count
        self.step = cfg.step.total_seconds()
        self.step_min = self.step / 60
        self.lag = cfg.lag.total_seconds()
        self.window = cfg.window.total_seconds()
        self.wslots = max(int(self.window // self.step), 1)
        self.warm_up = cfg.warm_up.total_seconds()
        self.min_duration = cfg.min_duration.total_seconds()
        self.opts = options(cfg)
        wmd = self.opts.get("warning_min_duration")
        self.warning_min_duration = self.min_duration if wmd is None else parse_duration(wmd).total_seconds()
        self.recovery = cfg.recovery.total_seconds()
        alone = self.opts.get("alone_min_duration")
        self.alone = None if alone is None else parse_duration(alone).total_seconds()
        self.corroborate_window = max(2 * self.step, 0.0)
        self.inpaint_max = cfg.inpaint_max.total_seconds()
        self.gap = float(self.opts.get("gap_steps", 3)) * self.step
        ex = self.opts.get("exit")
        if ex is None:
            ex = (1 + cfg.warning) / 2 if (cfg.detector == "seasonal" and self.drop) else cfg.warning
        self.exit = float(ex)


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


def wilson_upper(rate: float, n: float, z: float = 1.96) -> float:
    """Upper bound of a rate's 95% Wilson interval (0 failures in 16 tests: at most 19 %)."""
    if n <= 0:
        return 1.0
    return 1.0 - wilson_lower(1.0 - rate, n, z)


def _judge(
    cfg: SignalConfig | _Cfg, value: float, expected: float, count: int | None = None, warning: float | None = None
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


def _median(vals: list[float]) -> float:
    n = len(vals)
    mid = n // 2
    return vals[mid] if n % 2 else (vals[mid - 1] + vals[mid]) / 2


def _pct(c: SignalConfig | _Cfg, depth: float) -> float:
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


class _Series:
    """One series' points for this call, in time order, with what it needs to build anomalies."""

    __slots__ = ("key", "meta", "c", "points", "idx")

    def __init__(self, key: str, meta: Observation, c: _Cfg):
        self.key, self.meta, self.c = key, meta, c
        self.points: list[tuple[float, float | None, int | None]] = []
        self.idx = 0


def detect(  # noqa: C901 (to be split up: issue 19)
    watch: Watch,
    state: DetectorState | None,
    ticks: Sequence[datetime],
    observations: Iterable[Observation],
) -> DetectResult:
    """Advance the detectors through `ticks`, judging each observation once it is visible.

    An observation is visible at a tick when `time + lag <= tick`. Observations already
    processed (at or before a series' last processed time) are ignored, so feeding overlapping
    batches is harmless. Within a tick, events come in order of the observation's visible time,
    then series key (the same whether the tick runs alone or inside a replay). The input state
    is not modified.
    """
    old = state.series if state else {}
    work: dict[str, _Work] = {}
    events: list[AnomalyEvent] = []
    gaps: list[Gap] = []
    judged = 0
    by_key: dict[tuple[Any, ...], _Series] = {}
    cfgs: dict[str, _Cfg] = {}
    signals = watch.signals
    for o in observations:
        sig = o.signal
        c = cfgs.get(sig)
        if c is None:
            cfg = signals.get(sig)
            if cfg is None:
                continue
            c = cfgs[sig] = _Cfg(cfg)
        k = (o.source, sig, o.country, o.region, o.asn, o.service)
        ser = by_key.get(k)
        if ser is None:
            ser = by_key[k] = _Series(
                series_key(o.source, sig, entity_key(o.country, o.region, o.asn, o.service)), o, c
            )
        ser.points.append((o.time.timestamp(), o.value, o.count))
    series = sorted(by_key.values(), key=lambda x: x.key)
    for ser in series:
        ser.points.sort(key=lambda p: p[0])
    last_tick = state.last_tick if state else None
    held: dict[str, _Series] = {}  # series whose drop waits for corroboration (alone_min_duration)
    for tick in ticks:
        tick_ts = tick.timestamp()
        tick_events: list[tuple[float, str, int, AnomalyEvent]] = []
        tick_gaps: list[tuple[float, str, Gap]] = []
        for ser in series:
            pts = ser.points
            i, n = ser.idx, len(pts)
            c = ser.c
            lag = c.lag
            if i >= n or pts[i][0] + lag > tick_ts:
                continue
            s = work.get(ser.key)
            if s is None:
                s = work[ser.key] = _Work(old.get(ser.key))
            step_fn = STEPPERS[c.detector]
            min_count = c.min_count
            while i < n and pts[i][0] + lag <= tick_ts:
                t, value, count = pts[i]
                i += 1
                if s.last_time is not None and t <= s.last_time:
                    continue
                s.last_time = t
                if value is None or (min_count and (count is None or count < min_count)):
                    continue  # missing data: never an anomaly by itself
                if (value < 0 and c.mode == "ratio") or (min_count and not 0.0 <= value <= 1.0):
                    # a negative count, or a rate outside [0, 1], is garbage from the source: no data, not an outage
                    continue
                judged += 1
                if s.last_data is not None and t - s.last_data > c.gap:
                    tick_gaps.append(
                        (
                            t + lag,
                            ser.key,
                            Gap(
                                source=ser.meta.source,
                                signal=ser.meta.signal,
                                entity=ser.meta.entity_key,
                                start=_dt(s.last_data + c.step),
                                end=_dt(t - c.step),
                                reason="no data from the source for this series",
                            ),
                        )
                    )
                s.silent = False
                if s.first_seen is None:
                    s.first_seen = t
                out: list[AnomalyEvent] = []
                step_fn(watch, ser, s, t, float(value), count, tick, out)
                s.last_data = t
                for ev in out:
                    tick_events.append((t + lag, ser.key, len(tick_events), ev))
            ser.idx = i
            if s.held is not None:
                held[ser.key] = ser
        if held:
            _release_held(watch, tick, list(held.values()), work, old, signals, tick_events)
            for key in [k for k, x in held.items() if work[k].held is None]:
                del held[key]
        # a series that has gone silent is reported once, while silent (and again, complete, when data resumes)
        for key in _known_keys(old, work):
            st = work.get(key) or old[key]
            if st.last_data is None or st.silent:
                continue
            c = cfgs.get(key.split(":", 2)[1]) or _cfg_for(cfgs, signals, key)
            if c is None or tick_ts - c.lag - st.last_data <= c.gap:
                continue
            w = work.get(key)
            if w is None:
                w = work[key] = _Work(old[key])
            w.silent = True
            source, signal, entity = key.split(":", 2)
            tick_gaps.append(
                (
                    tick_ts,
                    key,
                    Gap(
                        source=source,
                        signal=signal,
                        entity=entity,
                        start=_dt(st.last_data + c.step),
                        end=_dt(tick_ts - c.lag),
                        reason=f"no data from the source for this series since {iso(_dt(st.last_data))} (still silent)",
                    ),
                )
            )
        if tick_events:
            tick_events.sort(key=lambda x: (x[0], x[1], x[2]))
            events.extend(ev for *_, ev in tick_events)
        if tick_gaps:
            tick_gaps.sort(key=lambda x: (x[0], x[1]))
            gaps.extend(g for *_, g in tick_gaps)
        last_tick = tick
    new_series = dict(old)
    for key, w in work.items():
        new_series[key] = w.to_state()
    return DetectResult(
        state=DetectorState(series=new_series, last_tick=last_tick), events=events, gaps=gaps, judged=judged
    )


def _release_held(
    watch: Watch,
    tick: datetime,
    held: list[_Series],
    work: dict[str, _Work],
    old: dict[str, SeriesState],
    signals: dict[str, SignalConfig],
    tick_events: list[tuple[float, str, int, AnomalyEvent]],
) -> None:
    """Open the held drops (signals with `options.alone_min_duration`) that are no longer alone.

    A drop is corroborated when another series of the same country and family started going bad
    within two native steps of it (several places or signals falling together), or already has
    an anomaly that started so; otherwise it opens on its own only when it is critical and has
    lasted `alone_min_duration`. Decided after every series has taken this tick's points, so
    the order of the series does not matter."""
    bad: list[tuple[str, str, Family, float]] = []  # (key, country, family, since) of every series going or gone bad
    for key in _known_keys(old, work):
        st = work.get(key) or old[key]
        since = st.bad_since
        if st.open is not None:
            since = _ts(datetime.fromisoformat(str(st.open["start"]).replace("Z", "+00:00")))
        if since is None:
            continue
        _, signal, entity = key.split(":", 2)
        service = next((p[8:] for p in entity.split("/") if p.startswith("service=")), None)
        bad.append((key, entity.split("/", 1)[0], watch.family_of(signal, service), since))
    for ser in held:
        s = work[ser.key]
        if s.held is None or s.bad_since is None or s.open is not None:
            continue
        c, o = ser.c, ser.meta
        family = watch.family_of(o.signal, o.service)
        level, expected, value, depth, count = s.held
        window = c.corroborate_window
        others = [
            k
            for k, cc, fam, since in bad
            if k != ser.key and cc == o.country and fam is family and abs(since - s.bad_since) <= window
        ]
        lasted = (s.last_time or s.bad_since) - s.bad_since
        if not others and not (level == "critical" and lasted >= (c.alone or 0.0)):
            continue
        out: list[AnomalyEvent] = []
        _open(
            watch,
            ser,
            s,
            s.bad_since,
            tick,
            level,
            expected,
            value,
            depth,
            count,
            out,
            corroborated_by=others[:5] if others else None,
        )
        s.held = None
        for ev in out:
            tick_events.append(((s.last_time or s.bad_since) + c.lag, ser.key, len(tick_events), ev))


def _known_keys(old: dict[str, SeriesState], work: dict[str, _Work]) -> list[str]:
    return sorted(set(old) | set(work)) if work.keys() - old.keys() else sorted(old)


def _cfg_for(cfgs: dict[str, _Cfg], signals: dict[str, SignalConfig], key: str) -> _Cfg | None:
    signal = key.split(":", 2)[1]
    cfg = signals.get(signal)
    if cfg is None:
        return None
    c = cfgs[signal] = _Cfg(cfg)
    return c


# --- anomaly lifecycle shared by the detectors -----------------------------------------------


def _open(
    watch: Watch,
    ser: _Series,
    s: _Work,
    start: float,
    tick: datetime,
    level: str,
    expected: float | None,
    value: float,
    depth: float,
    count: int | None,
    out: list[AnomalyEvent],
    **evidence: Any,
) -> None:
    c, o = ser.c, ser.meta
    anomaly = Anomaly(
        id=stable_id(watch.name, ser.key, start),
        watch=watch.name,
        source=o.source,
        signal=o.signal,
        family=watch.family_of(o.signal, o.service),
        entity=o.entity,
        direction=c.direction,
        start=_dt(start),
        detected_at=tick,
        level=level,
        expected=expected,
        observed=value,
        depth=round(depth, 4),
        severity=round(_pct(c, depth) * c.step_min, 2),
        points=1,
        evidence={
            "detector": c.detector,
            "threshold": c.critical if level == "critical" else c.warning,
            "mode": c.mode,
            "count": count,
            **evidence,
        },
    )
    s.open = anomaly.model_dump(mode="json")
    out.append(AnomalyEvent(tick=tick, change="opened", anomaly=anomaly))


def _extend(
    ser: _Series,
    s: _Work,
    tick: datetime,
    level: str | None,
    expected: float | None,
    value: float,
    depth: float,
    out: list[AnomalyEvent],
) -> None:
    """Another anomalous point of the open anomaly: deeper, longer, maybe escalated."""
    assert s.open is not None
    c = ser.c
    a = s.open
    escalated = level == "critical" and a["level"] != "critical"
    if escalated:
        a["level"] = "critical"
    if depth > a["depth"]:
        a["depth"] = round(depth, 4)
    a["observed"] = value
    a["expected"] = expected
    a["severity"] = round(a["severity"] + _pct(c, depth) * c.step_min, 2)
    a["points"] += 1
    if escalated:
        out.append(AnomalyEvent(tick=tick, change="updated", anomaly=Anomaly.model_validate(a)))


def _close(s: _Work, end: float, tick: datetime, value: float, out: list[AnomalyEvent]) -> None:
    assert s.open is not None
    anomaly = Anomaly.model_validate(s.open)
    anomaly.end = _dt(end)
    anomaly.observed = value
    s.open = None
    s.good_since = None
    out.append(AnomalyEvent(tick=tick, change="closed", anomaly=anomaly))


def _debounce(
    watch: Watch,
    ser: _Series,
    s: _Work,
    t: float,
    tick: datetime,
    level: str | None,
    recovered: bool,
    expected: float | None,
    value: float,
    depth: float,
    count: int | None,
    out: list[AnomalyEvent],
) -> None:
    """Open after `min_duration` of anomalous points, close after `recovery` of recovered ones."""
    c = ser.c
    if level is not None:
        s.good_since = None
        if s.bad_since is None:
            s.bad_since = t
        if s.open is None:
            if t - s.bad_since >= (
                c.min_duration if level == "critical" else max(c.min_duration, c.warning_min_duration)
            ):
                if c.alone is not None:
                    # opens once corroborated (detect() decides per tick)
                    s.held = [level, expected, value, depth, count]
                else:
                    _open(watch, ser, s, s.bad_since, tick, level, expected, value, depth, count, out)
        else:
            _extend(ser, s, tick, level, expected, value, depth, out)
        return
    s.bad_since = None
    s.held = None
    if s.open is None:
        return
    if not recovered:  # between the enter and exit thresholds: still the same anomaly
        s.good_since = None
        _extend(ser, s, tick, None, expected, value, depth, out)
        return
    if s.good_since is None:
        s.good_since = t
    if t - s.good_since >= c.recovery:
        _close(s, s.good_since, tick, value, out)


def _judge_point(c: _Cfg, value: float, expected: float, count: int | None) -> tuple[str | None, float, bool]:
    """(level, depth, recovered): the enter thresholds, and the exit threshold for hysteresis."""
    level, depth = _judge(c, value, expected, count)
    if level is not None:
        return level, depth, False
    if c.exit == c.warning:
        return None, depth, True
    back, _ = _judge(c, value, expected, count, warning=c.exit)
    return None, depth, back is None


def _inpaint(c: _Cfg, s: _Work, t: float, value: float, expected: float | None, level: str | None) -> float:
    """The value to remember: the expectation instead of an anomalous point, for at most `inpaint_max`."""
    if expected is None:
        s.paint_since = None
        return value
    if c.mode == "delta":
        odd = level is not None
    else:
        ratio = value / expected if expected > 0 else 1.0
        odd = level is not None or ratio < c.opts["inpaint_low"] or ratio > c.opts["inpaint_high"]
    if not odd:
        s.paint_since = None
        return value
    if s.paint_since is None:
        s.paint_since = t
    if t - s.paint_since < c.inpaint_max:
        return expected
    return value  # anomalous for longer than inpaint_max: the level shift becomes the new normal


# --- moving median (IODA) --------------------------------------------------------------------


def _step_moving_median(
    watch: Watch,
    ser: _Series,
    s: _Work,
    t: float,
    value: float,
    count: int | None,
    tick: datetime,
    out: list[AnomalyEvent],
) -> None:
    c = ser.c
    slot = int(t // c.step)
    wslots = c.wslots
    srt = s.sorted_values()
    hist = s.hist
    if s.h0 is None or slot - s.h0 - len(hist) > wslots:
        s.h0 = slot
        hist.clear()
        srt.clear()
    elif slot < s.h0 + len(hist):  # a second point in the newest slot replaces the first
        old = hist.pop()
        if old is not None:
            del srt[bisect.bisect_left(srt, old)]
    else:
        missing = slot - s.h0 - len(hist)
        if missing:
            hist.extend([None] * missing)
    # the window is the `wslots` slots before this one
    drop = slot - wslots - s.h0
    if drop > 0:
        for old in hist[:drop]:
            if old is not None:
                del srt[bisect.bisect_left(srt, old)]
        del hist[:drop]
        s.h0 += drop
    expected = None
    if len(srt) >= 3 and t - s.first_seen >= c.warm_up:
        expected = _median(srt)
        if expected < c.min_prediction:
            expected = None  # the expectation is too small to judge
    level, depth, recovered = None, 0.0, True
    if expected is not None:
        level, depth, recovered = _judge_point(c, value, expected, count)
    remembered = _inpaint(c, s, t, value, expected, level)
    hist.append(remembered)
    bisect.insort(srt, remembered)
    if level is None and s.open is None and s.bad_since is None:
        return  # the common case: nothing to debounce
    _debounce(watch, ser, s, t, tick, level, recovered, expected, value, depth, count, out)


# --- seasonal (Cloudflare Radar) -------------------------------------------------------------


def _similar_days(s: _Work, day: int, bucket: int, nb: int, ndays: int, k: int) -> list[int]:
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
        diffs = [
            abs(math.log(max(a, 1e-9) / max(b, 1e-9))) for a, b in zip(recent, cand) if a is not None and b is not None
        ]
        dist = sum(diffs) / len(diffs) if len(diffs) >= nb // 2 else float("inf")
        scored.append((dist, -d, d))
    scored.sort()
    return sorted(d for _, _, d in scored[:k])


def _step_seasonal(
    watch: Watch,
    ser: _Series,
    s: _Work,
    t: float,
    value: float,
    count: int | None,
    tick: datetime,
    out: list[AnomalyEvent],
) -> None:
    c = ser.c
    opts = c.opts
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
    chosen = [
        s.days[str(d)][bucket] for d in (s.similar or []) if str(d) in s.days and s.days[str(d)][bucket] is not None
    ]
    if t - s.first_seen >= c.warm_up and len(chosen) >= int(opts["min_days"]):
        expected = _median(sorted(chosen))  # type: ignore[arg-type]
        if expected < c.min_prediction:
            expected = None
    level, depth, recovered = None, 0.0, True
    if expected is not None:
        level, depth, recovered = _judge_point(c, value, expected, count)
    remembered = _inpaint(c, s, t, value, expected, level)
    if s.acc is None:
        s.acc = [day, bucket, 0.0, 0]
    s.acc[2] += remembered
    s.acc[3] += 1
    _debounce(watch, ser, s, t, tick, level, recovered, expected, value, depth, count, out)


# --- two-sided CUSUM (OONI) ------------------------------------------------------------------


def cusum_levels(opts: dict[str, Any], s: SeriesState | _Work) -> tuple[float, float, float]:
    """(mu0, mu1, v) for a series: fixed (OONI: 0.0, 0.7, 0.7), or relative to the series' own baseline.

    `mu0: baseline`: the reference is the series' measurement-weighted failure rate (a network whose
    tests of a service always fail 8 % of the time is not blocked at 10 %), floored at `mu0_min`;
    until `baseline_min_count` measurements are in, the numeric fallback `mu0_fallback` (default 0.0).
    `shift`: mu1 = mu0 + shift (the smallest block worth detecting). `v: binomial`: the variance of
    one test at the reference level k = (mu0 + mu1) / 2, k (1 - k), which makes each increment
    close to the log-likelihood ratio of a failure (or success) under a block versus the baseline.
    """
    mu0_opt = opts["mu0"]
    if mu0_opt == "baseline":
        if s.base_n >= float(opts["baseline_min_count"]):
            mu0 = s.base_f / s.base_n
        else:
            mu0 = float(opts.get("mu0_fallback", 0.0))
        mu0 = min(max(mu0, float(opts["mu0_min"])), 0.9)
    else:
        mu0 = float(mu0_opt)
    shift = opts.get("shift")
    mu1 = min(mu0 + float(shift), 0.999) if shift is not None else float(opts["mu1"])
    v_opt = opts["v"]
    if v_opt == "binomial":
        k = (mu0 + mu1) / 2
        v = max(k * (1 - k), 1e-3)
    else:
        v = float(v_opt)
    return mu0, mu1, v


def _learn_baseline(
    opts: dict[str, Any], s: _Work, value: float, count: int | None, gap: float, pending: bool = False
) -> None:
    """Add an hour to the series' reference failure rate (older hours fade with `baseline_half_life`).

    `pending`: the accumulator is building, so the hour waits; it joins the reference (with the
    others waiting) when the accumulator returns to zero, and is dropped if a block opens — a
    slowly building block must not raise the level it is judged against."""
    keep = 0.5 ** (gap / float(opts["baseline_half_life"]))
    n = float(count) if count else 1.0
    s.base_n *= keep
    s.base_f *= keep
    s.pend_n = s.pend_n * keep + n
    s.pend_f = s.pend_f * keep + value * n
    if not pending:
        s.base_n += s.pend_n
        s.base_f += s.pend_f
        s.pend_n = s.pend_f = 0.0


def _step_cusum(
    watch: Watch,
    ser: _Series,
    s: _Work,
    t: float,
    value: float,
    count: int | None,
    tick: datetime,
    out: list[AnomalyEvent],
) -> None:
    c = ser.c
    opts = c.opts
    h = float(opts["h"])
    gap = t - s.last_data if s.last_data is not None else 0.0
    if s.last_data is not None and gap > float(opts["decay_after"]):
        f = 0.5 ** (gap / float(opts["half_life"]))
        s.up *= f
        s.down *= f
    mu0, mu1, v = cusum_levels(opts, s)
    if (
        opts["mu0"] == "baseline"
        and s.open is None
        and (s.base_n < float(opts["baseline_min_count"]) or t - (s.first_seen or t) < c.warm_up)
    ):
        _learn_baseline(opts, s, value, count, gap)  # warm-up: no judgement before the series has a reference level
        return
    weight = float(count) if opts["weight_by_count"] and count else 1.0
    inc = weight * (mu1 - mu0) / v * (value - (mu0 + mu1) / 2)
    level, _ = _judge(c, value, mu0, count)
    depth = max(value - mu0, 0.0)
    if s.open is None:
        s.up = max(0.0, s.up + inc)
        if opts["mu0"] == "baseline":  # the reference learns only from hours that turned out normal
            _learn_baseline(opts, s, value, count, gap, pending=s.up > 0.0)
        if s.up == 0.0:
            s.up_since = None
        elif s.up_since is None:
            s.up_since = t
        n = float(count) if count else 1.0
        s.rising = None if s.up == 0.0 else (s.rising or [])[-71:] + [[t, value, n]]
        fast = (
            bool(opts["fast"])
            and level is not None
            and (opts.get("fast_at", "warning") == "warning" or level == "critical")
        )
        if s.up >= h or fast:
            lvl = "critical" if value - mu0 >= c.critical else "warning"
            # onset: where the data shows the block, not where noise lifted the accumulator
            start = _block_start(s.rising or [[t, value, n]], mu0, (mu0 + mu1) / 2)
            _open(
                watch,
                ser,
                s,
                start,
                tick,
                lvl,
                mu0,
                value,
                depth,
                count,
                out,
                cusum=round(s.up, 3),
                h=h,
                mu0=round(mu0, 4),
                mu1=round(mu1, 4),
                fast_path=fast and s.up < h,
            )
            s.blk = [
                sum(r[1] * r[2] for r in s.rising or [] if r[0] >= start) or value * n,
                sum(r[2] for r in s.rising or [] if r[0] >= start) or n,
            ]
            s.down, s.down_since, s.rising, s.back = 0.0, None, None, None
            s.pend_f = s.pend_n = 0.0  # the hours that built the block are not the network's normal
        return
    expected = float(s.open.get("expected") or mu0)  # the reference the block was opened against
    s.down = max(0.0, s.down - inc)
    if s.down == 0.0:
        s.down_since = None
    elif s.down_since is None:
        s.down_since = t
    # the unblock as the data shows it: hours back nearer the normal rate than the block's own level, for
    # `recovery`, and clearly so (their pooled rate's Wilson upper bound below halfway), end at the first of them
    n = float(count) if count else 1.0
    blk = s.blk or [float(s.open.get("observed") or mu1) * n, n]
    halfway = (expected + blk[0] / blk[1]) / 2
    if value < halfway:
        s.back = [s.back[0], s.back[1] + value * n, s.back[2] + n] if s.back else [t, value * n, n]
    else:
        s.back = None
        s.blk = [blk[0] + value * n, blk[1] + n]
    # z 1.28: a one-sided 90 % bound (0 of 6 tests, or 1 of 8, is clearly not a block failing 90 %)
    shown = (
        s.back is not None
        and t - s.back[0] >= c.recovery
        and wilson_upper(s.back[1] / s.back[2], s.back[2], z=1.28) < halfway
    )
    if s.down >= h or shown:
        end = s.back[0] if shown and s.back else (s.down_since if s.down_since is not None else t)
        _close(s, end, tick, value, out)
        s.up, s.up_since, s.down, s.down_since, s.blk, s.back = 0.0, None, 0.0, None, None, None
        return
    if s.down_since is None or value >= (mu0 + mu1) / 2:
        _extend(ser, s, tick, "critical" if value - expected >= c.critical else None, expected, value, depth, out)


def _block_start(rising: list[list[float]], mu0: float, midpoint: float) -> float:
    """Where a block began: the earliest hour since the accumulator left zero that is clearly past the midpoint
    (its rate's one-sided 84 % Wilson lower bound: one failed test of three does not date a block), itself and pooled
    with every
    hour after it past halfway from the normal rate to the block's level (the opening hour's). Noise before a
    block lifts the accumulator but is not the block; a quieter hour inside a partial block does not split it."""
    level = rising[-1][1]
    halfway = (mu0 + level) / 2
    f = n = 0.0
    start = rising[-1][0]
    for t, value, count in reversed(rising):
        f, n = f + value * count, n + count
        if value >= halfway and f / n >= halfway and wilson_lower(value, int(count), z=1.0) > midpoint:
            start = t
    return start


# --- fixed thresholds ------------------------------------------------------------------------


def _step_threshold(
    watch: Watch,
    ser: _Series,
    s: _Work,
    t: float,
    value: float,
    count: int | None,
    tick: datetime,
    out: list[AnomalyEvent],
) -> None:
    c = ser.c
    expected = c.opts.get("expected")
    if expected is None:
        expected = 0.0 if (not c.drop and c.mode == "delta") else 1.0
    level, depth, recovered = _judge_point(c, value, float(expected), count)
    _debounce(watch, ser, s, t, tick, level, recovered, float(expected), value, depth, count, out)


STEPPERS = {
    "moving_median": _step_moving_median,
    "seasonal": _step_seasonal,
    "cusum": _step_cusum,
    "threshold": _step_threshold,
}


def open_anomalies(state: DetectorState) -> list[Anomaly]:
    return [Anomaly.model_validate(s.open) for s in state.series.values() if s.open is not None]
