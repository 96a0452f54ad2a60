"""The detectors' state and configuration: what a series remembers between ticks (`SeriesState`, JSON
per tick), its working copy while `detect()` runs (`Work`), a signal's resolved configuration (`Cfg`)
and the detector options' defaults."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field

from pollwatch.models import AnomalyEvent, Direction, Gap, Observation
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


def from_ts(ts: float) -> datetime:
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


FIELDS = tuple(SeriesState.model_fields)


class Work:
    """A series' state while `detect()` runs: plain attributes (pydantic's are slow per point) and
    the window's values kept sorted for an O(log n) running median; written back at the end."""

    __slots__ = FIELDS + ("srt",)

    def __init__(self, s: SeriesState | None):
        d = s.__dict__ if s is not None else SeriesState().__dict__
        for f in FIELDS:
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
        return SeriesState.model_construct(**{f: getattr(self, f) for f in FIELDS})


class Cfg:
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


class Series:
    """One series' points for this call, in time order, with what it needs to build anomalies: its watch,
    the tick being judged and where the detectors put the events of each point (`out`)."""

    __slots__ = ("key", "meta", "c", "watch", "points", "idx", "tick", "out", "expected")

    def __init__(self, key: str, meta: Observation, c: Cfg, watch: Watch):
        self.key, self.meta, self.c, self.watch = key, meta, c, watch
        self.points: list[tuple[float, float | None, int | None]] = []
        self.idx = 0
        self.tick: datetime | None = None
        self.out: list[AnomalyEvent] = []
        # (time, expectation) of every judged point, when asked for (`expectations()`); None: not kept
        self.expected: list[tuple[float, float | None]] | None = None
