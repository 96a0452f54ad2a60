"""The seasonal detector (Cloudflare Radar): expectation = median, at this time of day, of the most
similar past days."""

from __future__ import annotations

import math

from pollwatch.detect.judge import judge_point, median
from pollwatch.detect.lifecycle import debounce, inpaint
from pollwatch.detect.state import DAY, Series, Work


def _similar_days(s: Work, day: int, bucket: int, nb: int, ndays: int, k: int) -> list[int]:
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


def step(ser: Series, s: Work, t: float, value: float, count: int | None) -> float | None:
    """Judge one point; returns the expectation it was judged against (None: not judged yet)."""
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
        expected = median(sorted(chosen))  # type: ignore[arg-type]
        if expected < c.min_prediction:
            expected = None
    level, depth, recovered = None, 0.0, True
    if expected is not None:
        level, depth, recovered = judge_point(c, value, expected, count)
    remembered = inpaint(c, s, t, value, expected, level)
    if s.acc is None:
        s.acc = [day, bucket, 0.0, 0]
    s.acc[2] += remembered
    s.acc[3] += 1
    debounce(ser, s, t, level, recovered, expected, value, depth, count)
    return expected
