"""Detection through classification on simulated data, without Prefect: every injected kind is found,
missing data is not an outage, and live ticks give exactly what a replay gives."""

from __future__ import annotations

import bisect
from datetime import timedelta

import pytest

from pollwatch.baseline import baselined
from pollwatch.models import Family, IncidentKind, Observation
from pollwatch.pipeline import WatchState, analyse
from pollwatch.simulate import demo_range, election_day_events, simulate


@pytest.fixture(scope="module")
def demo_day():
    from pollwatch.playbook import load_watch
    from tests.conftest import KZ_WATCH

    w = load_watch(KZ_WATCH)
    h0, day, end = demo_range(w)
    sc = simulate(w, h0, end, election_day_events(w), seed=3)
    return baselined(w, sc.observations, day), day, end, sc


def _matches(incident, label) -> bool:
    return incident.kind is label.kind and incident.start <= label.end and (incident.end or label.end) >= label.start


def test_every_injected_kind_is_detected_once_and_nothing_else(demo_day):
    w, day, end, sc = demo_day
    out = analyse(w, None, w.tick_times(day, end), sc.observations)
    assert len(out.incidents) == len(sc.labels)
    for label in sc.labels:
        hits = [i for i in out.incidents if _matches(i, label)]
        assert len(hits) == 1, f"{label.kind} not detected exactly once"
        # hourly OONI bins are judged `lag` after their start (20 min after the hour ends), as a live tick would
        hourly = hits[0].family in (Family.service, Family.circumvention)
        assert hits[0].detected_at - label.start <= timedelta(minutes=15) + (
            w.signals["service_failure_rate"].lag if hourly else timedelta(0)
        )
    nationwide = next(i for i in out.incidents if i.kind is IncidentKind.nationwide_outage)
    assert nationwide.scope.share >= 0.97 and len(nationwide.scope.asns) == len(w.providers)
    network = next(i for i in out.incidents if i.kind is IncidentKind.network_outage)
    assert network.scope.providers == ["Transtelecom"]


def test_missing_data_is_not_an_outage(demo_day):
    w, day, end, sc = demo_day
    # the whole country goes silent for two hours: values null, no measurements
    silent = [
        o.model_copy(update={"value": None}) if day + timedelta(hours=2) <= o.time < day + timedelta(hours=4) else o
        for o in simulate(w, day - timedelta(days=3), end, [], seed=4).observations
    ]
    out = analyse(w, None, w.tick_times(day, end), silent)
    assert out.incidents == []
    assert any(g.start >= day + timedelta(hours=2) for g in out.gaps)


def test_live_ticks_equal_replay(demo_day):
    w, day, end, sc = demo_day
    ticks = w.tick_times(day, day + timedelta(hours=16))
    replayed = analyse(w, None, ticks, sc.observations)
    state, live_events = WatchState(), []
    known = {}
    times = [o.time for o in sc.observations]  # sorted by time
    previous = None
    lag = max(c.lag for c in w.signals.values())
    # each tick sees what arrived since the last one less the longest lag (as watch_tick collects), and its own state
    for tick in ticks:
        lo = bisect.bisect_left(times, previous - lag - timedelta(minutes=10)) if previous else 0
        visible: list[Observation] = sc.observations[lo : bisect.bisect_right(times, tick)]
        previous = tick
        out = analyse(w, state, [tick], visible, known)
        state = WatchState.model_validate(out.state.model_dump(mode="json"))  # through JSON, as the store keeps it
        known.update({i.id: i for i in out.incidents})
        live_events += out.events
    key = lambda e: (e.tick, e.change, e.incident.id, e.incident.kind, e.incident.version)  # noqa: E731
    assert [key(e) for e in live_events] == [key(e) for e in replayed.events]
    assert len({e.incident.id for e in live_events}) >= 4
