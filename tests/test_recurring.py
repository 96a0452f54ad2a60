"""Recurring shutdowns: nightly cuts of one region become one incident with its episodes and pattern."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pollwatch.classify import classify
from pollwatch.models import Cause, Family, IncidentKind
from pollwatch.pipeline import WatchState, analyse
from pollwatch.simulate import EventSpec, simulate
from tests.test_classify import anomaly, closed, ev

MIN = timedelta(minutes=1)
# 01:00 in Almaty (UTC+6) on 1 June 2019
NIGHT = datetime(2019, 5, 31, 19, 0, tzinfo=timezone.utc)


def _nights(
    w,
    nights: list[datetime],
    hours: float | list[float] = 8,
    region: str = "KZ-KAR",
    shift: dict[int, timedelta] | None = None,
    **kw,
):
    """Classify one regional critical drop per night (an anomaly opened at its start, closed at its end); `hours`:
    how long each night's cut lasts (one figure for all, or one per night); `kw`: the anomalies' other fields."""
    state = None
    events = []
    for i, start in enumerate(nights):
        start = start + (shift or {}).get(i, timedelta(0))
        a = anomaly(start, **({"region": region, "signal": "active_probing"} | kw))
        end = start + timedelta(hours=hours[i] if isinstance(hours, list) else hours)
        ticks = [start, end + 5 * MIN, end + 40 * MIN]
        res = classify(w, state, ticks, [ev(start, "opened", a), ev(end + 5 * MIN, "closed", closed(a, end))])
        state, events = res.state, events + res.events
    return state, events


def test_nightly_cuts_are_one_incident_with_one_update_per_episode(kz_watch):
    nights = [NIGHT + timedelta(days=d) for d in range(6)]
    state, events = _nights(kz_watch, nights)
    ids = {e.incident.id for e in events}
    assert len(ids) == 1, "six nights of the same cut are one incident"
    last = events[-1].incident
    assert [e.local_start for e in last.episodes] == ["01:00"] * 6
    assert [e.local_end for e in last.episodes] == ["09:00"] * 6
    assert last.pattern is not None and last.pattern.period == "daily" and last.pattern.window == "01:00-09:00 local"
    assert last.pattern.episodes == 6 and last.status == "resolved" and last.start == nights[-1]
    # night 1: opened + resolved; night 2: the pattern forms (an update) + its end; nights 3..6: one update each
    changes = [e.change for e in events]
    assert changes[:2] == ["opened", "resolved"]
    assert changes[2:] == ["updated"] * (2 + 4)
    assert "recurring?" in events[2].reasons[0] and "confirmed if it ends about as that one did" in events[2].reasons[0]
    assert "one recurring incident from now on" in events[3].reasons[-1], "the pair stands when night 2 ends as night 1"
    assert events[-1].reasons == ["episode 6 of the daily cut: 01:00-09:00 local (8.0 h; usually 01:00-09:00 local)"]
    versions = [e.incident.version for e in events]
    assert versions == sorted(versions) and len(set(versions)) == len(versions), (
        "every alert is a new version of the thread"
    )
    public = last.to_public()
    assert len(public["episodes"]) == 6 and public["episodes"][0]["start"] == "2019-05-31T19:00:00Z"
    assert public["pattern"]["period"] == "daily"


def test_an_episode_at_another_time_and_a_missed_night_are_noted(kz_watch):
    nights = [NIGHT + timedelta(days=d) for d in (0, 1, 2, 4)]  # no cut on the fourth night
    state, events = _nights(kz_watch, nights, shift={3: timedelta(hours=2)})
    assert len({e.incident.id for e in events}) == 1
    notes = [r for e in events for r in e.reasons]
    assert any("did not come" in r and "2019-06-04" in r for r in notes), notes
    assert any("came at 03:00 local instead of the usual 01:00" in r for r in notes), notes
    last = events[-1].incident
    assert last.pattern.missed == 1 and last.episodes[-1].note.startswith("came at 03:00")


def test_other_times_other_regions_and_long_gaps_stay_separate(kz_watch):
    # different local times (more than the tolerance apart) on successive days: separate incidents
    _, ev1 = _nights(kz_watch, [NIGHT, NIGHT + timedelta(days=1, hours=5)])
    assert len({e.incident.id for e in ev1}) == 2
    # another region at the same time the next day: separate
    s, a = _nights(kz_watch, [NIGHT], region="KZ-KAR")
    _, b = _nights(kz_watch, [NIGHT + timedelta(days=1)], region="KZ-VOS")
    res = classify(
        kz_watch,
        s,
        [NIGHT + timedelta(days=1)],
        [
            ev(
                NIGHT + timedelta(days=1),
                "opened",
                anomaly(NIGHT + timedelta(days=1), region="KZ-VOS", signal="active_probing"),
            )
        ],
    )
    assert res.events[0].change == "opened" and res.events[0].incident.id != a[0].incident.id
    # the same time eight days later: too long a gap; five days: too far apart for a lone pair to form a pattern
    _, ev2 = _nights(kz_watch, [NIGHT, NIGHT + timedelta(days=8)])
    assert len({e.incident.id for e in ev2}) == 2
    _, ev3 = _nights(kz_watch, [NIGHT, NIGHT + timedelta(days=5)])
    assert len({e.incident.id for e in ev3}) == 2
    # but an exam calendar that is already a pattern bridges a weekend and more
    _, ev4 = _nights(kz_watch, [NIGHT, NIGHT + timedelta(days=1), NIGHT + timedelta(days=6)])
    assert len({e.incident.id for e in ev4}) == 1 and ev4[-1].incident.pattern.period == "irregular days"


@pytest.mark.parametrize(
    "days, minutes_off, one",
    [
        (1, 40, True),  # the next night, 40 min later: the same schedule, seen a little late
        (2, 20, True),  # two days apart: within 45 / 2 min
        (2, 30, False),
        (3, 15, True),  # three or more days apart: within 15 min
        (4, 30, False),  # two unrelated cuts 4 days apart, half an hour apart (a control scenario made this recurring)
    ],
)
def test_a_lone_pair_forms_a_pattern_only_as_close_in_time_as_its_days_apart_allow(kz_watch, days, minutes_off, one):
    _, events = _nights(kz_watch, [NIGHT, NIGHT + timedelta(days=days, minutes=minutes_off)])
    assert (len({e.incident.id for e in events}) == 1) is one
    assert (events[-1].incident.pattern is not None) is one


@pytest.mark.parametrize(
    "minutes_off, hours, one",
    [
        (0, 1, True),  # the same minute again (10-min series: 1 chance in 144): a schedule, even cut short
        (30, 8.2, True),  # half an hour later but ending as the first did
        (30, 1, False),  # half an hour later and an hour long against eight: a coincidence, split off at its end
    ],
)
def test_a_lone_pair_stands_only_if_its_second_episode_ends_as_the_first(kz_watch, minutes_off, hours, one):
    _, events = _nights(kz_watch, [NIGHT, NIGHT + timedelta(days=1, minutes=minutes_off)], hours=[8, hours])
    assert (len({e.incident.id for e in events}) == 1) is one
    assert events[2].change == "updated" and "recurring?" in events[2].reasons[0], "followed as one from its onset"


def test_a_pair_split_off_at_its_end_is_told_in_the_first_thread_and_gets_its_own_incident(kz_watch):
    first = NIGHT
    second = NIGHT + timedelta(days=1, minutes=30)
    state, events = _nights(kz_watch, [first])
    a = anomaly(second, region="KZ-KAR", signal="active_probing")
    res = classify(kz_watch, state, [second], [ev(second, "opened", a)])
    assert res.events[-1].incident.pattern.tentative and res.events[-1].incident.id == events[0].incident.id
    from pollwatch.alerts import render_text
    from pollwatch.notify.render.incident import root_message

    said = render_text(kz_watch, res.events[-1])
    assert "recurring? the same time as the cut of 2019-05-31 (01:00-09:00 local): confirmed or split off" in said
    root = str(root_message(kz_watch, res.events[-1].incident, key="k").blocks)
    assert "Schedule" in root and "recurring?" in root, "the thread's root says the schedule is not confirmed yet"
    # a restart mid-episode: the tentative pair is part of the stored state
    state = WatchState.from_stored(WatchState(grouper=res.state).model_dump(mode="json")).grouper
    end = second + timedelta(hours=1)
    res = classify(kz_watch, state, [end + 5 * MIN, end + 40 * MIN], [ev(end + 5 * MIN, "closed", closed(a, end))])
    assert [e.change for e in res.events] == ["updated", "opened", "resolved"]
    back, opened, resolved = res.events
    assert back.incident.id == events[0].incident.id and back.incident.pattern is None and not back.incident.episodes
    assert back.incident.start == first and back.incident.end == first + timedelta(hours=8)
    assert back.incident.version > res.events[0].incident.version - 1 and back.incident.status == "resolved"
    assert "not the same schedule" in back.reasons[0] and opened.incident.id in back.reasons[0]
    assert opened.incident.id != back.incident.id and opened.incident.start == second
    assert resolved.incident.end == end and resolved.incident.pattern is None
    assert resolved.incident.scope.regions == ["KZ-KAR"]
    # the later cut's own thread says why it starts late: in its start (console) and its end (Slack's thread)
    assert "why this alert: followed until its end as the next episode of incident" in render_text(kz_watch, opened)
    assert f"split off incident {back.incident.id}" in resolved.reasons[0]
    assert "recurring" not in render_text(kz_watch, back), "the first incident is a one-off again"
    # both are candidates again: the next night at the later one's time and length continues the later one
    third = second + timedelta(days=1)
    b = anomaly(third, region="KZ-KAR", signal="active_probing")
    res = classify(kz_watch, res.state, [third], [ev(third, "opened", b)])
    assert res.events[-1].incident.id == opened.incident.id


def test_hourly_series_need_the_same_length_too(kz_watch):
    """OONI's hourly counts put every onset on the hour: the same hour 1 day in 24 by chance, so a pair on an hourly
    series stands only when its lengths agree too."""
    block = {"region": None, "signal": "service_failure_rate", "family": Family.service, "service": "whatsapp"}
    morning = NIGHT + timedelta(hours=5)  # 06:00 local
    _, same = _nights(kz_watch, [morning, morning + timedelta(days=1)], hours=[5, 5], **block)
    assert len({e.incident.id for e in same}) == 1
    _, other = _nights(kz_watch, [morning, morning + timedelta(days=3)], hours=[5, 3], **block)
    assert len({e.incident.id for e in other}) == 2 and other[-1].incident.pattern is None


def test_recurring_state_survives_a_round_trip(kz_watch):
    state, _ = _nights(kz_watch, [NIGHT, NIGHT + timedelta(days=1)])
    stored = WatchState(grouper=state).model_dump(mode="json")
    again = WatchState.from_stored(stored)
    _, events = _nights(kz_watch, [NIGHT + timedelta(days=2)])  # a fresh state: a new incident
    res = classify(
        kz_watch,
        again.grouper,
        [NIGHT + timedelta(days=2)],
        [
            ev(
                NIGHT + timedelta(days=2),
                "opened",
                anomaly(NIGHT + timedelta(days=2), region="KZ-KAR", signal="active_probing"),
            )
        ],
    )
    assert res.state.incidents and next(iter(res.state.incidents.values())).pattern.episodes == 3
    assert events[0].change == "opened"


@pytest.fixture(scope="module")
def curfew(kz_watch_module):
    """Five nights of a simulated regional curfew 01:00-07:00 local through the whole analysis."""
    w = kz_watch_module
    day0 = w.at_offset(timedelta(days=-12))
    start = day0 - timedelta(days=2)
    specs = [
        EventSpec(
            kind=IncidentKind.regional_outage,
            regions=["KZ-KAR"],
            start=day0 + timedelta(days=d, hours=1),
            end=day0 + timedelta(days=d, hours=7),
            cause=Cause.government_directed,
        )
        for d in range(5)
    ]
    end = day0 + timedelta(days=5)
    sc = simulate(w, start, end, specs, seed=11)
    ticks = [t for t in w.tick_times(day0, end) if t < end]
    ticks = [day0 + k * timedelta(minutes=15) for k in range(int((end - day0) / timedelta(minutes=15)))]
    return w, specs, analyse(w, None, ticks, sc.observations)


@pytest.fixture(scope="module")
def kz_watch_module():
    from pollwatch.playbook import load_watch
    from tests.conftest import KZ_WATCH

    return load_watch(KZ_WATCH)


def test_a_simulated_curfew_is_one_incident_called_government_directed_from_night_three(curfew):
    w, specs, out = curfew
    conn = [i for i in out.incidents if i.family.value == "connectivity"]
    assert len(conn) == 1, [(i.kind, i.start) for i in conn]
    inc = conn[0]
    assert len(inc.episodes) == 5 and inc.pattern.period == "daily"
    for spec, ep in zip(specs, inc.episodes):
        assert abs(ep.start - spec.start) <= timedelta(minutes=30) and abs(ep.end - spec.end) <= timedelta(minutes=60)
    later = [e.incident for e in out.events if len(e.incident.episodes) >= 3]
    assert later and all(i.cause is Cause.government_directed for i in later), [
        (len(i.episodes), i.cause, i.cause_confidence) for i in later
    ]
    alerts = [a for a in out.alerts if a.incident_id == inc.id]
    assert len(alerts) <= 2 + 2 + 3, "one thread, about one alert per episode"


def test_the_report_and_the_alert_show_the_episodes(kz_watch):
    from pollwatch.alerts import render_text
    from pollwatch.report import ReportData, incident_table, render_html

    nights = [NIGHT + timedelta(days=d) for d in (0, 1, 2, 4)]
    _, events = _nights(kz_watch, nights, shift={3: timedelta(hours=2)})
    inc = events[-1].incident.model_copy(
        update={
            "episodes": [
                e.model_copy(update={"note": "<script>x</script>"}) if i == 1 else e
                for i, e in enumerate(events[-1].incident.episodes)
            ]
        }
    )
    data = ReportData(
        watch=kz_watch,
        since=NIGHT - timedelta(days=1),
        until=NIGHT + timedelta(days=6),
        generated_at=NIGHT,
        incidents=[inc],
    )
    page = render_html(data)
    assert "Recurring: 4 episodes" in page and "expected but did not come: 2019-06-04" in page
    assert page.count("01:00-09:00") >= 3 and "03:00-11:00" in page
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page
    assert incident_table(data)[0]["episodes"] == 4
    text = render_text(kz_watch, events[-1])
    assert "recurring: 4 episodes" in text and "why this alert: episode 4 of the" in text
    # the timeline draws a bar per episode; a report over the first two nights only still has the incident, from
    # its first night, with those two bars
    assert page.count("(episode ") == 4
    first_two = data.model_copy(update={"until": NIGHT + timedelta(days=1, hours=12)})
    page = render_html(first_two)
    assert page.count("(episode ") == 2 and "episode 1 of 4" in page and "episode 2 of 4" in page
    row = next(line for line in page.splitlines() if "<td>regional_outage</td>" in line)
    assert "<td>2019-05-31 19:00 UTC" in row and "(4 episodes)" in row, "listed from its first night"


def test_a_wider_cut_at_the_same_time_is_not_the_next_episode_of_a_network_outage(kz_watch):
    """Kazakhtelecom down at 01:00 one night, the whole country at 01:00 two nights later: two incidents."""
    a = anomaly(NIGHT, asn=9198, signal="active_probing")
    res = classify(
        kz_watch,
        None,
        [NIGHT, NIGHT + timedelta(hours=3, minutes=40)],
        [
            ev(NIGHT, "opened", a),
            ev(NIGHT + timedelta(hours=3, minutes=5), "closed", closed(a, NIGHT + timedelta(hours=3))),
        ],
    )
    later = NIGHT + timedelta(days=2)
    wide = [anomaly(later, signal="active_probing")] + [
        anomaly(later, asn=p.asn, signal="active_probing") for p in kz_watch.providers
    ]
    res2 = classify(kz_watch, res.state, [later], [ev(later, "opened", x) for x in wide])
    assert res2.events[0].change == "opened" and res2.events[0].incident.id != res.events[0].incident.id
    # the same network alone two nights later is its next episode
    alone = anomaly(later, asn=9198, signal="bgp")
    res3 = classify(kz_watch, res.state, [later], [ev(later, "opened", alone)])
    assert res3.events[0].incident.id == res.events[0].incident.id and "recurring?" in res3.events[0].reasons[0]


# --- the same nights however the ticks ran ---------------------------------------------------------


@pytest.fixture(scope="module")
def nights_and_a_stray():
    """A small watch cut nationwide 01:00-05:00 local on nights 1, 3 and 4, and 01:30-02:30 on night 2 (a stray that
    first looks like the schedule's next episode, and is split off when it ends an hour later)."""
    from pollwatch.baseline import baselined
    from tests.fakes.watches import small_watch

    w = small_watch(2)
    day = w.at_offset(timedelta(0))  # 00:00 local

    def cut(d: int, at: float, hours: float) -> EventSpec:
        start = day + timedelta(days=d, hours=at)
        return EventSpec(kind=IncidentKind.nationwide_outage, start=start, end=start + timedelta(hours=hours))

    end = day + timedelta(days=3, hours=12)
    sc = simulate(w, day - timedelta(hours=30), end, [cut(0, 1, 4), cut(1, 1.5, 1), cut(2, 1, 4), cut(3, 1, 4)], seed=5)
    return baselined(w, sc.observations, day), day, end, sc


def _shape(incidents) -> list[tuple]:
    return sorted(
        (
            i.pattern.episodes if i.pattern else 1,
            tuple((e.local_start, e.local_end) for e in i.episodes),
            i.start,
            i.end,
        )
        for i in incidents
    )


@st.composite
def _night_schedules(draw) -> list[timedelta]:
    """Tick offsets from night 1's 00:00, in the order they run: 5-30 min apart, some repeated or late, and catch-ups
    of 4-20 h (a worker down overnight)."""
    out, t = [], timedelta(minutes=5 * draw(st.integers(0, 6)))
    while t < timedelta(days=3, hours=12):
        out.append(t)
        move = draw(st.sampled_from(["next", "next", "next", "next", "repeat", "older", "catch_up"]))
        if move == "repeat":
            out.append(t)
        elif move == "older":
            out.append(t - timedelta(minutes=5 * draw(st.integers(1, 6))))
        t += timedelta(minutes=5 * (draw(st.integers(48, 240)) if move == "catch_up" else draw(st.integers(1, 6))))
    return out + [timedelta(days=3, hours=12)]


@settings(max_examples=25, deadline=None, derandomize=True)
@given(schedule=_night_schedules())
def test_a_split_pair_and_its_schedule_come_out_the_same_however_the_ticks_ran(nights_and_a_stray, schedule):
    from pollwatch.pipeline import judgement_times, latest_incidents, run_ticks

    w, day, end, sc = nights_and_a_stray
    replay = analyse(w, None, judgement_times(w, sc.start, end) + [end], sc.observations).incidents
    shapes = _shape(replay)
    assert [s[:2] for s in shapes] == [
        (1, ()),  # night 2's stray, split off
        (3, (("01:00", "05:00"),) * 3),  # nights 1, 3 and 4: one recurring incident
    ]
    live = latest_incidents(run_ticks(w, sc.observations, [day + x for x in schedule]))
    assert _shape(live) == shapes
