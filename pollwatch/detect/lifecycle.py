"""The anomaly lifecycle shared by the detectors: open, extend, close, the debounce and hysteresis
that decide when, and inpainting (what a series remembers of an anomalous point)."""

from __future__ import annotations

from typing import Any

from pollwatch.detect.judge import pct
from pollwatch.detect.state import Cfg, Series, Work, from_ts
from pollwatch.models import Anomaly, AnomalyEvent, stable_id


def open_anomaly(
    ser: Series,
    s: Work,
    start: float,
    level: str,
    expected: float | None,
    value: float,
    depth: float,
    count: int | None,
    **evidence: Any,
) -> None:
    c, o, watch, tick = ser.c, ser.meta, ser.watch, ser.tick
    anomaly = Anomaly(
        id=stable_id(watch.name, ser.key, start),
        watch=watch.name,
        source=o.source,
        signal=o.signal,
        family=watch.family_of(o.signal, o.service),
        entity=o.entity,
        direction=c.direction,
        start=from_ts(start),
        detected_at=tick,
        level=level,
        expected=expected,
        observed=value,
        depth=round(depth, 4),
        severity=round(pct(c, depth) * c.step_min, 2),
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
    ser.out.append(AnomalyEvent(tick=tick, change="opened", anomaly=anomaly))


def extend_anomaly(ser: Series, s: Work, level: str | None, expected: float | None, value: float, depth: float) -> None:
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
    a["severity"] = round(a["severity"] + pct(c, depth) * c.step_min, 2)
    a["points"] += 1
    if escalated:
        ser.out.append(AnomalyEvent(tick=ser.tick, change="updated", anomaly=Anomaly.model_validate(a)))


def close_anomaly(ser: Series, s: Work, end: float, value: float) -> None:
    assert s.open is not None
    anomaly = Anomaly.model_validate(s.open)
    anomaly.end = from_ts(end)
    anomaly.observed = value
    s.open = None
    s.good_since = None
    ser.out.append(AnomalyEvent(tick=ser.tick, change="closed", anomaly=anomaly))


def debounce(
    ser: Series,
    s: Work,
    t: float,
    level: str | None,
    recovered: bool,
    expected: float | None,
    value: float,
    depth: float,
    count: int | None,
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
                    open_anomaly(ser, s, s.bad_since, level, expected, value, depth, count)
        else:
            extend_anomaly(ser, s, level, expected, value, depth)
        return
    s.bad_since = None
    s.held = None
    if s.open is None:
        return
    if not recovered:  # between the enter and exit thresholds: still the same anomaly
        s.good_since = None
        extend_anomaly(ser, s, None, expected, value, depth)
        return
    if s.good_since is None:
        s.good_since = t
    if t - s.good_since >= c.recovery:
        close_anomaly(ser, s, s.good_since, value)


def inpaint(c: Cfg, s: Work, t: float, value: float, expected: float | None, level: str | None) -> float:
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
