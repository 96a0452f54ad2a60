"""The moving-median detector (IODA's production detector): expectation = median of a sliding window."""

from __future__ import annotations

import bisect

from pollwatch.detect.judge import judge_point, median
from pollwatch.detect.lifecycle import debounce, inpaint
from pollwatch.detect.state import Series, Work


def step(ser: Series, s: Work, t: float, value: float, count: int | None) -> float | None:
    """Judge one point; returns the expectation it was judged against (None: not judged yet)."""
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
        expected = median(srt)
        if expected < c.min_prediction:
            expected = None  # the expectation is too small to judge
    level, depth, recovered = None, 0.0, True
    if expected is not None:
        level, depth, recovered = judge_point(c, value, expected, count)
    remembered = inpaint(c, s, t, value, expected, level)
    hist.append(remembered)
    bisect.insort(srt, remembered)
    if level is None and s.open is None and s.bad_since is None:
        return expected  # the common case: nothing to debounce
    debounce(ser, s, t, level, recovered, expected, value, depth, count)
    return expected
