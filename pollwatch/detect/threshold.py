"""The fixed-threshold detector: a fixed expectation (`options.expected`), no history."""

from __future__ import annotations


from pollwatch.detect.judge import judge_point
from pollwatch.detect.lifecycle import debounce
from pollwatch.detect.state import Series, Work


def step(ser: Series, s: Work, t: float, value: float, count: int | None) -> float:
    """Judge one point; returns the fixed expectation."""
    c = ser.c
    expected = c.opts.get("expected")
    if expected is None:
        expected = 0.0 if (not c.drop and c.mode == "delta") else 1.0
    level, depth, recovered = judge_point(c, value, float(expected), count)
    debounce(ser, s, t, level, recovered, float(expected), value, depth, count)
    return float(expected)
