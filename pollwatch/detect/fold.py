"""`detect()`: the fold of the detectors over a watch's series, tick by tick (see the package docstring)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pollwatch.detect import cusum, moving_median, seasonal, threshold
from pollwatch.detect.lifecycle import open_anomaly
from pollwatch.detect.state import Cfg, DetectorState, DetectResult, Series, SeriesState, Work, from_ts
from pollwatch.models import AnomalyEvent, Family, Gap, Observation, entity_key, iso, series_key
from pollwatch.playbook import SignalConfig, Watch
from pollwatch.timeutil import parse_time

STEPPERS = {
    "moving_median": moving_median.step,
    "seasonal": seasonal.step,
    "cusum": cusum.step,
    "threshold": threshold.step,
}
# what a detector does with a point of too few measurements to judge alone (`min_count`): by default nothing
SPARSE = {"cusum": cusum.sparse}

# (visible time, series key, order of arrival, event) and (visible time, series key, gap): sorted per tick
_TickEvent = tuple[float, str, int, AnomalyEvent]
_TickGap = tuple[float, str, Gap]


def _flush(out: list[AnomalyEvent], tick_events: list[_TickEvent], visible: float, key: str) -> None:
    """A point's anomaly events into the tick's, stamped with when the point became visible."""
    for ev in out:
        tick_events.append((visible, key, len(tick_events), ev))
    out.clear()


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
    then series key (the same whether the tick runs alone or inside a replay). The input state
    is not modified.
    """
    fold = _Fold(watch, state)
    series = fold.series_of(observations)
    last_tick = state.last_tick if state else None
    for tick in ticks:
        fold.tick(tick, series)
        last_tick = tick
    new_series = dict(fold.old)
    for key, w in fold.work.items():
        new_series[key] = w.to_state()
    return DetectResult(
        state=DetectorState(series=new_series, last_tick=last_tick),
        events=fold.events,
        gaps=fold.gaps,
        judged=fold.judged,
    )


def expectations(watch: Watch, observations: Iterable[Observation]) -> dict[str, list[tuple[datetime, float | None]]]:
    """The expectation the detector judged each point against, by series key (`source:signal:entity`).

    The detectors run from an empty state over `observations` (give them the history they need
    first: a window, a warm-up, the seasonal detector's days) exactly as `detect()` runs them, so
    this is what the report draws as each signal's expectation. None: the point was not judged
    (warm-up, too little history, an expectation below `min_prediction`). Points without data are
    not judged and not listed."""
    fold = _Fold(watch, None)
    series = fold.series_of(observations)
    for ser in series:
        ser.expected = []
    last = max((ser.points[-1][0] + ser.c.lag for ser in series if ser.points), default=None)
    if last is not None:
        fold.tick(from_ts(last), series)  # every point visible: the expectations do not depend on the ticks
    return {ser.key: [(from_ts(t), e) for t, e in ser.expected or []] for ser in series}


class _Fold:
    """What `detect()` carries from tick to tick: the series' working states and what was found."""

    def __init__(self, watch: Watch, state: DetectorState | None):
        self.watch = watch
        self.signals = watch.signals
        self.old: dict[str, SeriesState] = state.series if state else {}
        self.work: dict[str, Work] = {}
        self.cfgs: dict[str, Cfg] = {}
        self.events: list[AnomalyEvent] = []
        self.gaps: list[Gap] = []
        self.judged = 0
        self.held: dict[str, Series] = {}  # series whose drop waits for corroboration (alone_min_duration)

    def series_of(self, observations: Iterable[Observation]) -> list[Series]:
        """The observations of the watch's signals as series, by key, each in time order."""
        by_key: dict[tuple[Any, ...], Series] = {}
        cfgs, signals = self.cfgs, self.signals
        for o in observations:
            sig = o.signal
            c = cfgs.get(sig)
            if c is None:
                cfg = signals.get(sig)
                if cfg is None:
                    continue
                c = cfgs[sig] = Cfg(cfg)
            k = (o.source, sig, o.country, o.region, o.asn, o.service)
            ser = by_key.get(k)
            if ser is None:
                ser = by_key[k] = Series(
                    series_key(o.source, sig, entity_key(o.country, o.region, o.asn, o.service)), o, c, self.watch
                )
            ser.points.append((o.time.timestamp(), o.value, o.count))
        series = sorted(by_key.values(), key=lambda x: x.key)
        for ser in series:
            ser.points.sort(key=lambda p: p[0])
        return series

    def tick(self, tick: datetime, series: list[Series]) -> None:
        tick_ts = tick.timestamp()
        tick_events: list[_TickEvent] = []
        tick_gaps: list[_TickGap] = []
        for ser in series:
            self._advance(ser, tick, tick_ts, tick_events, tick_gaps)
        if self.held:
            _release_held(self.watch, tick, list(self.held.values()), self.work, self.old, tick_events)
            for key in [k for k, x in self.held.items() if self.work[k].held is None]:
                del self.held[key]
        self._silences(tick_ts, tick_gaps)
        if tick_events:
            tick_events.sort(key=lambda x: (x[0], x[1], x[2]))
            self.events.extend(ev for *_, ev in tick_events)
        if tick_gaps:
            tick_gaps.sort(key=lambda x: (x[0], x[1]))
            self.gaps.extend(g for *_, g in tick_gaps)

    def _advance(
        self, ser: Series, tick: datetime, tick_ts: float, tick_events: list[_TickEvent], tick_gaps: list[_TickGap]
    ) -> None:
        """Step one series through its points visible by this tick."""
        pts = ser.points
        i, n = ser.idx, len(pts)
        c = ser.c
        lag = c.lag
        if i >= n or pts[i][0] + lag > tick_ts:
            return
        s = self.work.get(ser.key)
        if s is None:
            s = self.work[ser.key] = Work(self.old.get(ser.key))
        step_fn = STEPPERS[c.detector]
        ser.tick, out = tick, ser.out
        min_count = c.min_count
        while i < n and pts[i][0] + lag <= tick_ts:
            t, value, count = pts[i]
            i += 1
            if s.last_time is not None and t <= s.last_time:
                continue
            s.last_time = t
            if value is None or (min_count and (count is None or count < min_count)):
                if value is not None and count and (sparse := SPARSE.get(c.detector)) is not None:
                    sparse(ser, s, t, float(value), int(count))  # may show an unblock, never opens a block
                    _flush(out, tick_events, t + lag, ser.key)
                continue  # missing data: never an anomaly by itself
            if (value < 0 and c.mode == "ratio") or (min_count and not 0.0 <= value <= 1.0):
                # a negative count, or a rate outside [0, 1], is garbage from the source: no data, not an outage
                continue
            self.judged += 1
            if s.last_data is not None and t - s.last_data > c.gap:
                tick_gaps.append((t + lag, ser.key, _resumed_gap(ser, s.last_data, t)))
            s.silent = False
            if s.first_seen is None:
                s.first_seen = t
            expected = step_fn(ser, s, t, float(value), count)
            if ser.expected is not None:
                ser.expected.append((t, expected))
            s.last_data = t
            _flush(out, tick_events, t + lag, ser.key)
        ser.idx = i
        if s.held is not None:
            self.held[ser.key] = ser

    def _silences(self, tick_ts: float, tick_gaps: list[_TickGap]) -> None:
        """A series that has gone silent is reported once, while silent (and again, complete, when data resumes)."""
        for key in _known_keys(self.old, self.work):
            st = self.work.get(key) or self.old[key]
            if st.last_data is None or st.silent:
                continue
            c = self._cfg_for(key)
            if c is None or tick_ts - c.lag - st.last_data <= c.gap:
                continue
            w = self.work.get(key)
            if w is None:
                w = self.work[key] = Work(self.old[key])
            w.silent = True
            source, signal, entity = key.split(":", 2)
            gap = Gap(
                source=source,
                signal=signal,
                entity=entity,
                start=from_ts(st.last_data + c.step),
                end=from_ts(tick_ts - c.lag),
                reason=f"no data from the source for this series since {iso(from_ts(st.last_data))} (still silent)",
            )
            tick_gaps.append((tick_ts, key, gap))

    def _cfg_for(self, key: str) -> Cfg | None:
        signal = key.split(":", 2)[1]
        c = self.cfgs.get(signal)
        if c is None:
            cfg: SignalConfig | None = self.signals.get(signal)
            if cfg is None:
                return None
            c = self.cfgs[signal] = Cfg(cfg)
        return c


def _resumed_gap(ser: Series, last_data: float, t: float) -> Gap:
    """The complete gap of a series whose data resumes at `t` after a silence."""
    c = ser.c
    return Gap(
        source=ser.meta.source,
        signal=ser.meta.signal,
        entity=ser.meta.entity_key,
        start=from_ts(last_data + c.step),
        end=from_ts(t - c.step),
        reason="no data from the source for this series",
    )


def _release_held(
    watch: Watch,
    tick: datetime,
    held: list[Series],
    work: dict[str, Work],
    old: dict[str, SeriesState],
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
            since = parse_time(st.open["start"]).timestamp()
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
        ser.tick, out = tick, ser.out
        open_anomaly(
            ser,
            s,
            s.bad_since,
            level,
            expected,
            value,
            depth,
            count,
            corroborated_by=others[:5] if others else None,
        )
        s.held = None
        for ev in out:
            tick_events.append(((s.last_time or s.bad_since) + c.lag, ser.key, len(tick_events), ev))
        out.clear()


def _known_keys(old: dict[str, SeriesState], work: dict[str, Work]) -> list[str]:
    return sorted(set(old) | set(work)) if work.keys() - old.keys() else sorted(old)
