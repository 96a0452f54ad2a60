"""Hostile values through the detector (pollwatch.pipeline.analyse) and the store: no crash, no false outage.

A clean simulated day with no events is analysed once; each case then spoils it in one way (huge
numbers, negative values, rates outside [0, 1], duplicated or shuffled points, unknown ASNs, times
far in the future, signals the watch does not know) and must give the clean result again.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pollwatch import store
from pollwatch.models import Observation
from pollwatch.pipeline import analyse
from pollwatch.simulate import demo_range, simulate

Spoiler = Callable[[list[Observation], random.Random], list[Observation]]


@pytest.fixture(scope="module")
def clean():
    from pollwatch.playbook import load_watch
    from tests.conftest import KZ_WATCH

    w = load_watch(KZ_WATCH)
    _, day, _ = demo_range(w)
    sc = simulate(w, day - timedelta(hours=36), day + timedelta(hours=4), [], seed=11)
    ticks = w.tick_times(day, day + timedelta(hours=4))
    out = analyse(w, None, ticks, sc.observations)
    assert out.incidents == []  # the baseline the spoiled runs are held to
    return w, day, ticks, sc.observations, out


def _in_window(obs: list[Observation], day: datetime) -> list[int]:
    return [
        i
        for i, o in enumerate(obs)
        if o.value is not None and day + timedelta(minutes=30) <= o.time < day + timedelta(hours=3, minutes=30)
    ]


def _replace_values(
    values: list[float], per_series: int = 1
) -> Callable[[list[Observation], random.Random, datetime], list[Observation]]:
    def spoil(obs: list[Observation], rng: random.Random, day: datetime) -> list[Observation]:
        out = list(obs)
        idx = _in_window(out, day)
        for i in rng.sample(idx, min(len(idx), 40 * per_series)):
            out[i] = out[i].model_copy(update={"value": rng.choice(values)})
        return out

    return spoil


def _duplicate(obs, rng, day):
    return [o for o in obs for _ in range(2)]


def _shuffle(obs, rng, day):
    out = list(obs)
    rng.shuffle(out)
    return out


def _far_future(obs, rng, day):
    future = [datetime(9999, 12, 31, 23, 55, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc)]
    extra = [o.model_copy(update={"time": t, "value": 0.0}) for o in obs[:200] for t in future]
    return obs + extra


def _unknown_signals(obs, rng, day):
    return obs + [o.model_copy(update={"signal": "not_in_the_playbook", "value": 0.0}) for o in obs[:500]]


CASES = {
    "huge_numbers": _replace_values([1e300, sys.float_info.max, 1.7e308, 2.0**1023]),
    "negative_values": _replace_values([-1.0, -1e300, -0.0001]),
    "duplicated_points": _duplicate,
    "out_of_order_points": _shuffle,
    "far_future_points": _far_future,
    "unknown_signals": _unknown_signals,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_values_through_the_detector_change_nothing(clean, case: str):
    w, day, ticks, observations, baseline = clean
    spoiled = CASES[case](observations, random.Random(case), day)
    out = analyse(w, None, ticks, spoiled)
    assert [i.kind for i in out.incidents] == [], f"{case}: false outage {[(i.kind, i.scope) for i in out.incidents]}"
    assert out.alerts == []
    if case in ("duplicated_points", "out_of_order_points"):  # same data, any order or repetition: same decisions
        assert out.state.detector.model_dump() == baseline.state.detector.model_dump()


def test_rates_outside_zero_one_are_not_a_service_block(clean):
    w, day, ticks, observations, _ = clean
    rng = random.Random(5)
    out = list(observations)
    idx = [i for i in _in_window(out, day) if out[i].signal == "service_failure_rate"]
    for i in rng.sample(idx, 30):
        out[i] = out[i].model_copy(update={"value": rng.choice([1e300, 7.0, -3.0]), "count": 50})
    assert analyse(w, None, ticks, out).incidents == []


def test_unknown_asns_do_not_crash_or_raise_a_countrywide_outage(clean):
    w, day, ticks, observations, _ = clean
    template = [o for o in observations if o.asn == w.providers[0].asn and o.service is None]
    strangers = [64512, 4_294_967_295, 1]
    extra = []
    for asn in strangers:
        for o in template:
            # the stranger vanishes for two hours in the middle of the window
            gone = day + timedelta(hours=1) <= o.time < day + timedelta(hours=3)
            extra.append(o.model_copy(update={"asn": asn, "value": 0.0 if gone and o.value is not None else o.value}))
    out = analyse(w, None, ticks, observations + extra)
    assert not [i for i in out.incidents if i.kind.value in ("nationwide_outage", "regional_outage")]
    for inc in out.incidents:  # an unknown network may only ever be reported as itself
        assert set(inc.scope.asns) <= set(strangers)
    from pollwatch.alerts import build_alerts

    build_alerts(w, out.events)  # rendering names of unknown providers must not crash


def test_a_watch_with_flapping_data_source_stays_quiet(clean):
    """Values toggling to null every other point (a flapping source) are missing data, not an outage."""
    w, day, ticks, observations, _ = clean
    flapping = [
        o.model_copy(update={"value": None}) if (o.time.minute // 5) % 2 and o.time >= day else o for o in observations
    ]
    assert analyse(w, None, ticks, flapping).incidents == []


# --- at the boundary: the model refuses what the detector must never see -------------------------


@settings(max_examples=50, deadline=None, derandomize=True)
@given(
    value=st.floats(allow_nan=True, allow_infinity=True),
    count=st.integers(min_value=-(10**6), max_value=10**6),
    asn=st.integers(min_value=-(10**25), max_value=10**25),
)
def test_observation_accepts_only_sane_values(value: float, count: int, asn: int):
    try:
        o = Observation(
            time="2019-06-09T05:00:00Z", source="ioda", signal="bgp", country="kz", value=value, count=count, asn=asn
        )
    except ValidationError:
        return
    assert o.value == value and o.value == o.value and abs(o.value) != float("inf")  # finite
    assert o.count >= 0 and 0 <= o.asn < 2**32


# --- the store -------------------------------------------------------------------------------------


def _hostile_batch() -> list[Observation]:
    base = dict(source="ioda", signal="bgp", country="KZ")
    t0 = datetime(2019, 6, 9, tzinfo=timezone.utc)
    return [
        Observation(time=t0, value=sys.float_info.max, asn=9198, **base),
        Observation(time=t0 + timedelta(minutes=5), value=-1e300, asn=9198, **base),
        Observation(time=t0 + timedelta(minutes=10), value=5e-324, asn=2**31 - 1, **base),
        Observation(time=datetime(9999, 12, 31, 23, 59, tzinfo=timezone.utc), value=1.0, **base),
        Observation(time=datetime(1970, 1, 1, tzinfo=timezone.utc), value=None, **base),
        Observation(time=t0, value=1.0, asn=9198, **base),  # duplicate key, later value wins
        Observation(
            time=t0 + timedelta(minutes=15), value=2.0, region="x" * 100, service="s" * 100, count=2**31 - 1, **base
        ),
    ]


def _check_store(url: str) -> None:
    batch = _hostile_batch()
    with store.session_scope(url) as s:
        store.upsert_observations(s, batch)
        store.upsert_observations(s, list(reversed(batch)))  # again, out of order: still one row per key
    with store.session_scope(url) as s:
        back = store.query_observations(s, country="KZ")
        assert store.count_observations(s) == 6
    by_key = {(o.entity_key, o.time): o.value for o in back}
    assert by_key[("KZ/asn=9198", datetime(2019, 6, 9, tzinfo=timezone.utc))] == sys.float_info.max  # newest write wins
    assert by_key[("KZ", datetime(9999, 12, 31, 23, 59, tzinfo=timezone.utc))] == 1.0
    assert [o.time for o in back] == sorted(o.time for o in back)


def test_store_keeps_hostile_values_sqlite(isolated_store):
    _check_store(isolated_store)


@pytest.mark.postgres
def test_store_keeps_hostile_values_postgres(pg_url):
    _check_store(pg_url)


@pytest.mark.postgres
def test_store_keeps_asns_above_2_to_the_31_postgres(pg_url):
    o = Observation(
        time=datetime(2019, 6, 9, tzinfo=timezone.utc),
        source="ioda",
        signal="bgp",
        country="KZ",
        asn=4_200_000_000,
        service="whatsapp",
        value=0.5,
        count=3_000_000_000,
    )
    with store.session_scope(pg_url) as s:
        store.upsert_observations(s, [o])
    with store.session_scope(pg_url) as s:
        assert store.query_observations(s, country="KZ") == [o]
