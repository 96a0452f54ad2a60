"""Detectors on small hand-made series: IODA moving median with inpainting, Radar seasonal,
OONI two-sided CUSUM, fixed thresholds; missing data, gaps, debounce, and live ticks == replay."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

from pollwatch.detect import DetectorState, combined_severity, detect, wilson_lower
from pollwatch.models import Anomaly, Entity, Family, Observation
from pollwatch.playbook import SignalConfig, Watch

T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)


def make_watch(**signals: dict) -> Watch:
    return Watch(
        name="t",
        country="KZ",
        election_date="2024-03-10",
        timezone="UTC",
        signals={k: SignalConfig(**v) for k, v in signals.items()},
    )


def series(
    signal: str, values, step=timedelta(minutes=5), start=T0, counts=None, source="ioda", **entity
) -> list[Observation]:
    return [
        Observation(
            time=start + i * step,
            source=source,
            signal=signal,
            country="KZ",
            value=v,
            count=None if counts is None else counts[i],
            **entity,
        )
        for i, v in enumerate(values)
    ]


def run(watch: Watch, obs: list[Observation], step=timedelta(minutes=5)):
    ticks = sorted({o.time for o in obs})
    return detect(watch, None, ticks, obs)


def changes(res):
    return [(e.change, e.anomaly.start, e.anomaly.end) for e in res.events]


BGP = dict(source="ioda", step="5m", window="2h", warm_up="1h", warning=0.99, critical=0.5, recovery="10m")


def test_moving_median_opens_on_the_first_point_and_closes_after_recovery():
    w = make_watch(bgp=BGP)
    vals = [1000.0] * 30 + [100.0] * 6 + [1000.0] * 10
    res = run(w, series("bgp", vals))
    opened = [e for e in res.events if e.change == "opened"]
    closed = [e for e in res.events if e.change == "closed"]
    assert len(opened) == 1 and len(closed) == 1
    a = opened[0].anomaly
    assert a.start == T0 + 30 * timedelta(minutes=5) and a.detected_at == a.start  # within the native step
    assert a.level == "critical" and a.depth == pytest.approx(0.9)
    assert closed[0].anomaly.end == T0 + 36 * timedelta(minutes=5)
    assert closed[0].tick == T0 + 38 * timedelta(minutes=5)  # after `recovery`
    assert closed[0].anomaly.severity == pytest.approx(6 * 90 * 5)  # drop % x minutes


INDEX = dict(
    source="monash",
    step="1h",
    window="48h",
    warm_up="6h",
    warning=0.5,
    critical=0.3,
    recovery="2h",
    options={"alone_min_duration": "3h"},
)
H = timedelta(hours=1)


def _county(region: str, vals: list[float]) -> list[Observation]:
    return series("idx", vals, step=H, source="monash", region=region)


def test_a_county_that_falls_alone_waits_to_be_critical_for_alone_min_duration():
    w = make_watch(idx=INDEX)
    flat = [100.0] * 12
    # two hours at 20 then 40 and back, no other county falling: nothing (a drop of a noisy index)
    short = _county("A", flat + [20, 20, 40] + [100.0] * 6) + _county("B", [100.0] * 21)
    assert run(w, short, step=H).events == []
    # 70 % down (warning) for ten hours, alone: still nothing; warnings alone never alert
    warn = _county("A", flat + [35.0] * 10 + [100.0] * 4) + _county("B", [100.0] * 26)
    assert run(w, warn, step=H).events == []
    # critical for three hours, alone: opened then, starting where the drop began
    long = _county("A", flat + [10.0] * 5) + _county("B", [100.0] * 17)
    (ev,) = run(w, long, step=H).events
    assert ev.anomaly.start == T0 + 12 * H and ev.tick == T0 + 15 * H


def test_counties_falling_together_corroborate_each_other_at_once():
    w = make_watch(idx=INDEX)
    flat = [100.0] * 12
    # A falls at hour 12 (a warning), B an hour later (critical): both open when B falls
    obs = _county("A", flat + [40.0] * 4) + _county("B", flat + [100.0, 10.0, 10.0, 10.0]) + _county("C", [100.0] * 16)
    res = run(w, obs, step=H)
    opened = {e.anomaly.entity.region: e for e in res.events if e.change == "opened"}
    assert set(opened) == {"A", "B"}
    assert opened["A"].tick == opened["B"].tick == T0 + 13 * H
    assert opened["A"].anomaly.start == T0 + 12 * H and opened["A"].anomaly.evidence["corroborated_by"]
    # the same in live ticks, one hour at a time through the state's JSON, gives the same events
    state, live = None, []
    for i in range(16):
        tick = T0 + i * H
        r = detect(w, state, [tick], [o for o in obs if o.time == tick])
        state = DetectorState.model_validate_json(r.state.model_dump_json())
        live += r.events
    assert [(e.tick, e.anomaly.id) for e in live] == [(e.tick, e.anomaly.id) for e in res.events]


def test_inpainting_keeps_the_expectation_then_a_level_shift_becomes_normal():
    cfg = dict(BGP, inpaint_max="1h", warning=0.9)
    w = make_watch(bgp=cfg)
    vals = [1000.0] * 30 + [600.0] * 60
    res = run(w, series("bgp", vals))
    opened = [e for e in res.events if e.change == "opened"]
    closed = [e for e in res.events if e.change == "closed"]
    assert len(opened) == 1 and len(closed) == 1
    # the expectation stays 1000 while inpainting (1 h), then the new level fills the 2 h window
    assert opened[0].anomaly.expected == 1000.0
    end = closed[0].anomaly.end
    assert T0 + timedelta(minutes=150 + 60) < end <= T0 + timedelta(minutes=150 + 60 + 70)
    s = res.state.series["ioda:bgp:KZ"]
    assert len(s.hist) <= 24 + 1  # bounded: the 2 h window at 5 min


def test_min_prediction_and_warm_up_suppress_judgement():
    w = make_watch(bgp=dict(BGP, min_prediction=50))
    assert run(w, series("bgp", [10.0] * 30 + [0.0] * 5)).events == []  # expectation too small
    w2 = make_watch(bgp=BGP)
    assert run(w2, series("bgp", [1000.0] * 5 + [10.0] * 3)).events == []  # still warming up


def test_debounce_min_duration():
    w = make_watch(bgp=dict(BGP, min_duration="10m"))
    res = run(w, series("bgp", [1000.0] * 30 + [100.0] * 2 + [1000.0] * 5))
    assert res.events == []  # two bad points (5 min apart) are shorter than 10 min
    res = run(w, series("bgp", [1000.0] * 30 + [100.0] * 4 + [1000.0] * 5))
    assert [e.change for e in res.events] == ["opened", "closed"]
    assert res.events[0].anomaly.start == T0 + 30 * timedelta(minutes=5)


def test_hysteresis_exit_threshold():
    w = make_watch(bgp=dict(BGP, warning=0.8, critical=0.5, options={"exit": 0.95}))
    # falls to 40%, comes back only to 90% (above enter 0.8, below exit 0.95): stays open
    res = run(w, series("bgp", [1000.0] * 30 + [400.0] * 3 + [900.0] * 6 + [1000.0] * 4))
    assert [e.change for e in res.events] == ["opened", "closed"]
    assert res.events[1].anomaly.end == T0 + 39 * timedelta(minutes=5)


def test_missing_data_never_opens_and_long_gaps_are_reported():
    w = make_watch(bgp=BGP)
    vals = [1000.0] * 30 + [None] * 20 + [1000.0] * 5
    res = run(w, series("bgp", vals))
    assert res.events == []
    running, done = res.gaps  # once while silent (at the first tick past 3 steps), then complete
    assert running.start == done.start == T0 + 30 * timedelta(minutes=5)
    assert running.end == T0 + 33 * timedelta(minutes=5) and "still silent" in running.reason
    assert done.end == T0 + 49 * timedelta(minutes=5)


def test_rates_from_too_few_measurements_are_missing_data():
    w = make_watch(
        sfr=dict(
            source="ooni",
            family="service",
            direction="rise",
            step="1h",
            detector="threshold",
            mode="delta",
            warning=0.3,
            critical=0.5,
            min_count=3,
            recovery="1h",
        )
    )
    obs = series(
        "sfr",
        [0.0] * 5 + [1.0, 1.0] + [0.0] * 3,
        step=timedelta(hours=1),
        counts=[5] * 5 + [2, 1] + [5] * 3,
        source="ooni",
        asn=1,
        service="x",
    )
    assert run(w, obs).events == []


OONI = dict(
    source="ooni",
    family="service",
    direction="rise",
    step="1h",
    detector="cusum",
    mode="delta",
    warning=0.3,
    critical=0.5,
    min_count=1,
    window="7d",
    options={"fast": False},
)


def _rates(rates, counts):
    return series("sfr", rates, step=timedelta(hours=1), counts=counts, source="ooni", asn=33771, service="telegram")


def test_cusum_block_starts_where_the_data_shows_it_not_at_an_hour_of_noise_before():
    w = make_watch(sfr=OONI)
    # a noisy hour at 10:00 (2 of 5 failed) lifts the accumulator; the block itself starts at 11:00
    rates = [0.0] * 10 + [0.4] + [0.9] * 4 + [0.0] * 5
    opened = run(w, _rates(rates, [5] * 20)).events[0]
    assert opened.change == "opened" and opened.anomaly.start == T0 + timedelta(hours=11)
    # a partial block with one quieter hour inside is one block from its first hour
    rates = [0.0] * 10 + [0.6, 0.2, 0.8, 0.6, 0.6, 0.8] + [0.0] * 4
    opened = run(w, _rates(rates, [10] * 20)).events[0]
    assert opened.anomaly.start == T0 + timedelta(hours=10)


def test_cusum_block_and_unblock_weighted_by_count():
    w = make_watch(sfr=OONI)
    rates = [0.0] * 10 + [0.8] * 4 + [0.0] * 6
    res = run(w, _rates(rates, [5] * 20))
    assert [e.change for e in res.events] == ["opened", "closed"]
    opened, closed = res.events
    # each blocked hour adds 5 x (0.8 - 0.35) = 2.25: h = 7 is crossed on the 4th hour
    assert opened.tick == T0 + timedelta(hours=13)
    assert opened.anomaly.start == T0 + timedelta(hours=10)  # where the accumulator left zero
    # the data shows the unblock at 14:00: two clean hours (the signal's recovery, 1 h) whose 10 tests bound the rate
    # under halfway from normal to the block's level close it at the second, ended at the first (the downward
    # accumulator, 1.75 an hour, would have taken until 17:00)
    assert closed.tick == T0 + timedelta(hours=15) and closed.anomaly.end == T0 + timedelta(hours=14)
    # the same rates from 1 measurement an hour are not enough evidence
    assert run(w, _rates(rates, [1] * 20)).events == []


def test_cusum_unblock_seen_in_hours_too_sparse_to_judge_alone_is_dated_and_shown_by_them():
    """After a block, a network's hours with 2 tests each (under min_count 3: not judged alone) all pass: pooled,
    they show the unblock from its first hour, as soon as they are enough evidence; before, the block ran on until
    the next hour with 3 tests (here 19:00), ended there."""
    w = make_watch(sfr=OONI | {"min_count": 3, "recovery": "1h"})
    rates = [0.0] * 10 + [0.9] * 4 + [0.0] * 6
    counts = [5] * 14 + [2, 2, 2, 2, 2, 5]
    res = run(w, _rates(rates, counts))
    assert [e.change for e in res.events] == ["opened", "closed"]
    closed = res.events[1]
    assert closed.anomaly.end == T0 + timedelta(hours=14), "ended where the tests first passed"
    assert closed.tick == T0 + timedelta(hours=15), "2 + 2 passing tests over the recovery hour bound the rate"
    # sparse hours never open a block, however they fail
    assert run(w, _rates([0.0] * 10 + [1.0] * 6 + [0.0] * 4, [5] * 10 + [2] * 6 + [5] * 4)).events == []


def test_cusum_accumulators_decay_after_a_day_without_data():
    w = make_watch(sfr=OONI)
    obs = _rates([0.9] * 2, [5, 5]) + _rates([0.9] * 2, [5, 5])
    for o in obs[2:]:
        o.time += timedelta(days=4)  # 0.5 ** (4 d / 48 h) = 1/4 of the evidence survives
    res = run(w, obs)
    assert res.events == []
    s = res.state.series["ooni:sfr:KZ/asn=33771/service=telegram"]
    assert s.up == pytest.approx(2.75 * 2 * 0.5 ** (95 / 48) + 2.75 * 2)  # 95 h without data
    w_nodecay = make_watch(sfr=dict(OONI, options={"fast": False, "decay_after": 10**7}))
    assert [e.change for e in run(w_nodecay, obs).events] == ["opened"]


def test_cusum_fast_path_for_a_clear_block():
    w = make_watch(sfr=dict(OONI, options={}))
    res = run(w, _rates([0.0] * 5 + [1.0], [8] * 6))
    assert [e.change for e in res.events] == ["opened"]
    assert res.events[0].anomaly.evidence["fast_path"] is True


BASELINE_CUSUM = dict(
    OONI, warm_up="1d", options={"fast": False, "mu0": "baseline", "shift": 0.2, "v": "binomial", "h": 9.0}
)


def test_baseline_cusum_learns_a_networks_own_failure_rate_and_catches_a_partial_block():
    import random

    rng = random.Random(5)
    w = make_watch(sfr=BASELINE_CUSUM)
    counts = [10] * 96
    # a network whose telegram tests fail 10 % of the time for three days: its normal, not a block
    normal = [sum(rng.random() < 0.10 for _ in range(10)) / 10 for _ in range(72)]
    assert run(w, _rates(normal, counts[:72])).events == []
    # OONI's fixed reference (mu0 0) reads the same hours as a block once enough of them add up
    assert run(
        make_watch(sfr=dict(OONI, options={"fast": False, "mu0": 0.0, "mu1": 0.2, "v": "binomial", "h": 9.0})),
        _rates(normal, counts[:72]),
    ).events
    # then 40 % of its tests fail (a partial block): opened within six hours, against mu0 ~ 0.1
    # (each hour adds about 10 x 0.2 / v x (0.4 - (mu0 + mu1) / 2) ~ 2; the hours that build the
    # block do not raise the reference)
    partial = normal + [0.4] * 24
    res = run(w, _rates(partial, counts))
    (opened,) = [e for e in res.events if e.change == "opened"]
    assert T0 + timedelta(hours=72) <= opened.anomaly.start and opened.tick <= T0 + timedelta(hours=78)
    assert 0.05 <= opened.anomaly.evidence["mu0"] <= 0.15 and opened.anomaly.evidence["mu1"] == pytest.approx(
        opened.anomaly.evidence["mu0"] + 0.2
    )


def test_baseline_cusum_waits_for_its_reference_level():
    w = make_watch(sfr=BASELINE_CUSUM)
    # a series that fails 50 % of the time from its first hour is chronic, not news: nothing during warm-up, nothing
    # after
    assert run(w, _rates([0.5] * 48, [10] * 48)).events == []


def test_threshold_detector_fixed_expectation():
    w = make_watch(
        psr=dict(
            source="webprobe",
            family="service",
            step="5m",
            detector="threshold",
            warning=0.8,
            critical=0.5,
            recovery="5m",
        )
    )
    res = run(w, series("psr", [1.0, 0.95, 0.3, 0.2, 1.0, 1.0], source="webprobe", asn=1, service="x"))
    assert [e.change for e in res.events] == ["opened", "closed"]


SEASONAL = dict(
    source="radar",
    step="1h",
    detector="seasonal",
    warm_up="3d",
    window="28d",
    warning=0.7,
    critical=0.4,
    recovery="1h",
    options={"k": 3, "min_days": 3},
)


def _diurnal(days: int, dip_at: int | None = None) -> list[float]:
    out = []
    for h in range(days * 24):
        v = 100 * (1 + 0.6 * math.sin(h / 24 * 2 * math.pi))
        if dip_at is not None and dip_at <= h < dip_at + 3:
            v *= 0.2
        out.append(round(v, 3))
    return out


def test_seasonal_follows_the_day_and_catches_a_drop():
    w = make_watch(radar=SEASONAL)
    clean = run(w, series("radar", _diurnal(8), step=timedelta(hours=1), source="radar"))
    assert clean.events == []
    # a moving median over the same data alarms every night
    mm = make_watch(radar=dict(SEASONAL, detector="moving_median", window="24h", warm_up="1d", options={}))
    assert any(
        e.change == "opened"
        for e in run(mm, series("radar", _diurnal(8), step=timedelta(hours=1), source="radar")).events
    )
    res = run(w, series("radar", _diurnal(8, dip_at=6 * 24 + 10), step=timedelta(hours=1), source="radar"))
    assert [e.change for e in res.events] == ["opened", "closed"]
    assert res.events[0].anomaly.start == T0 + timedelta(hours=6 * 24 + 10)
    s = res.state.series["radar:radar:KZ"]
    assert len(s.days) <= 29


@pytest.mark.parametrize("kind", ["bgp", "sfr", "sfr_sparse", "radar"])
def test_live_ticks_through_json_equal_one_replay(kind):
    if kind == "bgp":
        w = make_watch(bgp=dict(BGP, inpaint_max="30m"))
        obs = series("bgp", [1000.0] * 30 + [100.0] * 6 + [None] * 5 + [1000.0] * 10 + [700.0] * 20 + [1000.0] * 5)
    elif kind == "sfr":
        w = make_watch(sfr=dict(OONI, options={}))
        obs = _rates([0.0] * 5 + [0.6] * 5 + [0.0] * 5 + [1.0] + [0.0] * 6, [4] * 22)
    elif kind == "sfr_sparse":  # the unblock shown by hours too sparse to judge alone, then full hours
        w = make_watch(sfr=OONI | {"min_count": 3, "recovery": "1h"})
        obs = _rates([0.0] * 10 + [0.9] * 4 + [0.0] * 7, [5] * 14 + [2] * 4 + [5] * 3)
    else:
        w = make_watch(radar=SEASONAL)
        obs = series("radar", _diurnal(7, dip_at=5 * 24 + 3), step=timedelta(hours=1), source="radar")
    ticks = sorted({o.time for o in obs})
    whole = detect(w, None, ticks, obs)
    state, live, live_gaps = DetectorState(), [], []
    for tick in ticks:
        out = detect(w, state, [tick], [o for o in obs if tick - timedelta(hours=2) <= o.time <= tick])
        state = DetectorState.model_validate_json(out.state.model_dump_json())
        live += out.events
        live_gaps += out.gaps
    assert [e.model_dump() for e in live] == [e.model_dump() for e in whole.events]
    assert [g.model_dump() for g in live_gaps] == [g.model_dump() for g in whole.gaps]
    assert whole.events and (kind != "bgp" or len(whole.gaps) == 2)


def test_helpers():
    assert wilson_lower(1.0, 8) > 0.6 > wilson_lower(1 / 3, 3)
    ent = Entity(country="KZ")

    def mk(src, sev):
        return Anomaly(
            id=src + str(sev),
            watch="t",
            source=src,
            signal="s",
            family=Family.connectivity,  # noqa: E731
            entity=ent,
            direction="drop",
            start=T0,
            detected_at=T0,
            severity=sev,
        )

    assert combined_severity([mk("ioda", 10), mk("ioda", 20), mk("ooni", 3)]) == 90


def test_warnings_can_need_longer_than_criticals():
    w = make_watch(bgp=dict(BGP, warning=0.8, critical=0.5, options={"warning_min_duration": "10m"}))
    # a lone warning-level point is not an anomaly; a warning that lasts is; a critical point opens at once
    vals = [1000.0] * 30 + [700.0] + [1000.0] * 5 + [700.0] * 3 + [1000.0] * 5 + [100.0] + [1000.0] * 5
    res = run(w, series("bgp", vals))
    opened = [e.anomaly for e in res.events if e.change == "opened"]
    assert [(a.start, a.level) for a in opened] == [
        (T0 + 36 * timedelta(minutes=5), "warning"),
        (T0 + 44 * timedelta(minutes=5), "critical"),
    ]
    assert opened[0].detected_at == T0 + 38 * timedelta(minutes=5) and opened[1].detected_at == opened[1].start
