"""Incidents do not depend on when ticks run: any schedule of live ticks (regular, late, missed, a
catch-up after hours, a first tick long after the data began, the same tick twice) gives the incidents
a replay of the same observations gives, because a tick steps through the native steps it missed."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pollwatch.baseline import baselined
from pollwatch.models import Incident, IncidentKind
from pollwatch.pipeline import analyse, judgement_step, judgement_times, latest_incidents, run_ticks
from pollwatch.simulate import EventSpec, simulate
from tests.fakes.watches import small_watch

H = timedelta(hours=1)
CADENCE = timedelta(minutes=5)


@pytest.fixture(scope="module")
def scenario():
    """A two-provider watch: Kcell alone dark at 05:15, Kazakhtelecom alone at 09:30, WhatsApp blocked 03:00-07:00."""
    w = small_watch(2)
    day = w.at_offset(timedelta(0))
    kt, kcell = (p.asn for p in w.providers)
    events = [
        EventSpec(kind=IncidentKind.network_outage, start=day + 5.25 * H, end=day + 6 * H, asns=[kcell]),
        EventSpec(kind=IncidentKind.network_outage, start=day + 9.5 * H, end=day + 10 * H, asns=[kt]),
        EventSpec(
            kind=IncidentKind.service_block, start=day + 3 * H, end=day + 7 * H, services=["whatsapp"], depth=0.9
        ),
    ]
    # other networks hold half the country; shares measured from the day before, as the baseline flow does
    sc = simulate(w, day - 30 * H, day + 12 * H, events, seed=2, other_space=0.5)
    return baselined(w, sc.observations, day), day, sc


def replayed(w, sc, until: datetime) -> list[Incident]:
    return analyse(w, None, judgement_times(w, sc.start, until) + [until], sc.observations).incidents


def shape(incidents: list[Incident]) -> list[tuple]:
    return sorted(
        (i.kind.value, tuple(i.scope.asns), tuple(i.scope.regions), tuple(i.scope.services), i.start, i.end)
        for i in incidents
    )


def assert_same(live: list[Incident], replay: list[Incident], step: timedelta) -> None:
    """Same kinds and scopes, starts and ends within one native step."""
    assert len(live) == len(replay), (shape(live), shape(replay))
    for a, b in zip(
        sorted(live, key=lambda i: (i.start, i.kind.value)), sorted(replay, key=lambda i: (i.start, i.kind.value))
    ):
        assert (a.kind, a.scope.asns, a.scope.regions, a.scope.services) == (
            b.kind,
            b.scope.asns,
            b.scope.regions,
            b.scope.services,
        )
        assert abs(a.start - b.start) <= step
        assert (a.end is None) == (b.end is None) and (a.end is None or abs(a.end - b.end) <= step)


def test_a_catch_up_after_hours_keeps_separate_events_apart(scenario):
    """The issue's case: two ticks, then one 7 h late; two network outages hours apart stay two incidents."""
    w, day, sc = scenario
    end = day + 11 * H
    live = latest_incidents(run_ticks(w, sc.observations, [day + H, day + H + CADENCE, end]))
    replay = replayed(w, sc, end)
    assert_same(live, replay, judgement_step(w))
    outages = sorted((i for i in live if i.family.value == "connectivity"), key=lambda i: i.start)
    assert [i.scope.asns for i in outages] == [[w.providers[1].asn], [w.providers[0].asn]]
    # each network is its own share, not half the country
    assert [i.kind for i in outages] == [IncidentKind.network_outage] * 2
    assert all(i.end is not None for i in outages)


@st.composite
def schedules(draw) -> list[timedelta]:
    """Offsets from election day 00:00 of the ticks, in the order they run: a first tick up to 10 h in, then
    regular, repeated, late (older than the last), skipped, and catch-up (4-8 h) steps, ending at 12:00."""
    first = draw(st.integers(0, 120)) * CADENCE
    out = [first]
    t = first
    moves = draw(
        st.lists(st.sampled_from(["next", "next", "next", "repeat", "older", "skip", "catch_up"]), max_size=30)
    )
    for m in moves:
        if m == "repeat":
            out.append(t)
        elif m == "older":
            out.append(t - draw(st.integers(1, 6)) * CADENCE)
        else:
            t += CADENCE * {"next": 1, "skip": draw(st.integers(2, 12)), "catch_up": draw(st.integers(48, 96))}[m]
            if t >= 12 * H:
                break
            out.append(t)
    return out + [12 * H]


@settings(max_examples=12, deadline=None, derandomize=True)
@given(schedule=schedules())
def test_any_tick_schedule_gives_the_replays_incidents(scenario, schedule):
    w, day, sc = scenario
    ticks = [day + x for x in schedule]
    live = latest_incidents(run_ticks(w, sc.observations, ticks))
    assert_same(live, replayed(w, sc, day + 12 * H), judgement_step(w))
