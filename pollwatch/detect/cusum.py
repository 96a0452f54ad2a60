"""The two-sided CUSUM detector (OONI's event detector) for failure rates of service tests."""

from __future__ import annotations

from typing import Any

from pollwatch.detect.judge import judge, wilson_lower, wilson_upper
from pollwatch.detect.lifecycle import close_anomaly, extend_anomaly, open_anomaly
from pollwatch.detect.state import SeriesState, Series, Work


def cusum_levels(opts: dict[str, Any], s: SeriesState | Work) -> tuple[float, float, float]:
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
    opts: dict[str, Any], s: Work, value: float, count: int | None, gap: float, pending: bool = False
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


def step(ser: Series, s: Work, t: float, value: float, count: int | None) -> float | None:
    """Judge one hour; returns the reference rate it was judged against (None: still learning it)."""
    c = ser.c
    opts = c.opts
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
        return None
    weight = float(count) if opts["weight_by_count"] and count else 1.0
    inc = weight * (mu1 - mu0) / v * (value - (mu0 + mu1) / 2)
    if s.open is None:
        _rise(ser, s, t, value, count, (mu0, mu1, inc, gap))
        return mu0
    expected = float(s.open.get("expected") or mu0)  # an open block is judged against the rate it was opened against
    _fall(ser, s, t, value, count, (mu0, mu1, inc))
    return expected


def _rise(
    ser: Series,
    s: Work,
    t: float,
    value: float,
    count: int | None,
    step: tuple[float, float, float, float],
) -> None:
    """No block open: the upward accumulator, and the block it (or the fast path) opens.
    `step`: (mu0, mu1, the accumulator's increment, seconds since the last data)."""
    c, opts = ser.c, ser.c.opts
    mu0, mu1, inc, gap = step
    h = float(opts["h"])
    level, _ = judge(c, value, mu0, count)
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
    if s.up < h and not fast:
        return
    lvl = "critical" if value - mu0 >= c.critical else "warning"
    # onset: where the data shows the block, not where noise lifted the accumulator
    start = _block_start(s.rising or [[t, value, n]], mu0, (mu0 + mu1) / 2)
    depth = max(value - mu0, 0.0)
    open_anomaly(
        ser,
        s,
        start,
        lvl,
        mu0,
        value,
        depth,
        count,
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


def _fall(ser: Series, s: Work, t: float, value: float, count: int | None, step: tuple[float, float, float]) -> None:
    """A block is open: the downward accumulator, and the unblock it (or the data) shows.
    `step`: (mu0, mu1, the accumulator's increment)."""
    assert s.open is not None
    c = ser.c
    mu0, mu1, inc = step
    h = float(c.opts["h"])
    depth = max(value - mu0, 0.0)
    expected = float(s.open.get("expected") or mu0)  # the reference the block was opened against
    s.down = max(0.0, s.down - inc)
    if s.down == 0.0:
        s.down_since = None
    elif s.down_since is None:
        s.down_since = t
    # the unblock as the data shows it: hours back nearer the normal rate than the block's own level, for
    # `recovery`, and clearly so (their pooled rate's Wilson upper bound below halfway), end at the first of them
    halfway = _pool(s, t, value, float(count) if count else 1.0, expected, mu1)
    if _shown(ser, s, t, halfway, value):
        return
    if s.down >= h:
        close_anomaly(ser, s, s.down_since if s.down_since is not None else t, value)
        s.up, s.up_since, s.down, s.down_since, s.blk, s.back = 0.0, None, 0.0, None, None, None
        return
    if s.down_since is None or value >= (mu0 + mu1) / 2:
        extend_anomaly(ser, s, "critical" if value - expected >= c.critical else None, expected, value, depth)


def _shown(ser: Series, s: Work, t: float, halfway: float, value: float) -> bool:
    """Close the block when the data shows its end: hours back for `recovery`, their pooled rate clearly under
    halfway (z 1.28, a one-sided 90 % bound: 0 of 6 tests, or 1 of 8, is clearly not a block failing 90 %); the
    end is the first of those hours."""
    if s.back is None or t - s.back[0] < ser.c.recovery:
        return False
    if wilson_upper(s.back[1] / s.back[2], s.back[2], z=1.28) >= halfway:
        return False
    close_anomaly(ser, s, s.back[0], value)
    s.up, s.up_since, s.down, s.down_since, s.blk, s.back = 0.0, None, 0.0, None, None, None
    return True


def _pool(s: SeriesState | Work, t: float, value: float, n: float, expected: float, mu1: float) -> float:
    """Add an hour of an open block to the evidence of its unblock (`s.back`: hours back nearer the normal rate
    than the block's level, pooled) or of the block itself (`s.blk`); returns the halfway rate between them."""
    assert s.open is not None
    blk = s.blk or [float(s.open.get("observed") or mu1) * n, n]
    halfway = (expected + blk[0] / blk[1]) / 2
    if value < halfway:
        s.back = [s.back[0], s.back[1] + value * n, s.back[2] + n] if s.back else [t, value * n, n]
    else:
        s.back = None
        s.blk = [blk[0] + value * n, blk[1] + n]
    return halfway


def sparse(ser: Series, s: Work, t: float, value: float, count: int) -> None:
    """An hour with too few tests to be judged alone (under `min_count`, e.g. 2 of a network's Tor tests): never
    a reason to open a block or move the accumulators, but while a block is open its tests join the pooled
    evidence of the unblock, so an unblock seen first in sparse hours is dated and shown by them (the pooled
    rate's Wilson bound over `recovery` decides, as for full hours)."""
    if s.open is None or count <= 0 or not 0.0 <= value <= 1.0:
        return
    mu0, mu1, _ = cusum_levels(ser.c.opts, s)
    _shown(ser, s, t, _pool(s, t, value, float(count), float(s.open.get("expected") or mu0), mu1), value)


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
