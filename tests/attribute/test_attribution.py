"""Attribution: each evidence item with its numbers, the scorer's causes, and scenarios from the simulator."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pollwatch.attribute import (
    AttributionContext,
    ExternalEvent,
    attribute,
    attribute_incident,
    gather_evidence,
    onset_alignment,
    recurrence_days,
    same_time_days,
)
from pollwatch.classify import classify
from pollwatch.models import Cause, Direction, Family, Incident, IncidentKind, Scope
from pollwatch.pipeline import analyse
from pollwatch.playbook import ContextEvent
from pollwatch.simulate import EventSpec, simulate
from tests.test_classify import MIN, anomaly, ev

T0 = datetime(2019, 6, 9, 14, 0, tzinfo=timezone.utc)  # 20:00 in Almaty, polls close
H = timedelta(hours=1)
QUIET = datetime(2019, 6, 9, 22, 17, tzinfo=timezone.utc)  # 04:17 local, far from any milestone


def incident_of(watch, anomalies, tick=None) -> Incident:
    """The incident classification makes of these (connectivity or service) anomalies."""
    tick = tick or max(a.start for a in anomalies)
    res = classify(watch, None, [tick], [ev(tick, "opened", a) for a in anomalies])
    (inc,) = res.state.incidents.values()
    return inc


def items(watch, inc, anomalies, context=None) -> dict:
    """Each gathered item by name: (x, detail, its own numbers)."""
    out = {}
    for e in gather_evidence(watch, inc, anomalies, context):
        own = {k: v for k, v in e.numbers.items() if k not in ("x", "w")}
        out[e.name] = (e.numbers["x"], e.detail, own)
    return out


def shutdown(watch, start, signals=("bgp", "active_probing", "telescope"), spread=timedelta(0)):
    out = []
    for i, p in enumerate(watch.providers):
        for s in signals:
            if s != "telescope":
                out.append(anomaly(start + spread * i, asn=p.asn, signal=s))
    out += [anomaly(start, signal=s, depth=0.95) for s in signals]
    return out


# --- primitives ---------------------------------------------------------------------------------


def test_onset_alignment_at_the_data_resolution():
    t = datetime(2019, 6, 9, 20, 0)
    assert onset_alignment(t) == ("hour", 0)
    assert onset_alignment(t.replace(minute=30)) == ("half_hour", 30)
    assert onset_alignment(t.replace(minute=3), timedelta(minutes=5))[0] == "hour"  # 5-minute bins: 20:00-20:05
    assert onset_alignment(t.replace(minute=3))[0] is None
    assert onset_alignment(t.replace(minute=47), timedelta(minutes=5)) == (None, 47)


def test_recurrence_helpers(kz_watch):
    start = T0
    assert recurrence_days(start, [start - timedelta(days=1, minutes=10)]) == pytest.approx(24 + 10 / 60)
    assert recurrence_days(start, [start - timedelta(days=1, hours=2)]) is None
    assert same_time_days(start, [start - timedelta(days=3, minutes=-5)], kz_watch.tz) == 3
    assert same_time_days(start, [start - timedelta(days=9)], kz_watch.tz) is None


# --- each evidence item ---------------------------------------------------------------------------


def test_an_evidence_item_is_one_registered_function(kz_watch):
    from pollwatch.attribute.registry import HAND_SET, REGISTRY, evidence

    @evidence(test_recorded_cable_work=-2.0)
    def cable_work(f):
        return f.weigh("test_recorded_cable_work", 1.0, "cable work recorded nearby", {"km": 3}, Cause.cable_cut)

    try:
        anoms = [anomaly(QUIET, asn=9198)]
        inc = attribute_incident(kz_watch, incident_of(kz_watch, anoms), anoms)
        item = next(e for e in inc.evidence if e.name == "test_recorded_cable_work")
        assert item.weight == -2.0 and item.supports is Cause.cable_cut
        assert item.numbers == {"km": 3, "x": 1.0, "w": -2.0} and item.detail == "cable work recorded nearby"
        assert inc.evidence[-1].numbers["against"]["cable_cut"] == 2.0
        with pytest.raises(ValueError, match="registered twice"):
            evidence(test_recorded_cable_work=1.0)(cable_work)
    finally:
        del REGISTRY["test_recorded_cable_work"], HAND_SET["test_recorded_cable_work"]
    assert "test_recorded_cable_work" not in {e.name for e in attribute_incident(kz_watch, inc, anoms).evidence}


def test_onset_on_the_hour_half_hour_or_not(kz_watch):
    w = kz_watch
    for start, name, x in [
        (T0, "onset_on_the_hour", 1.0),
        (T0 + 30 * MIN, "onset_on_the_half_hour", 1.0),
        (T0 + 17 * MIN, "onset_on_the_hour", 0.0),
    ]:
        anoms = [anomaly(start, asn=9198)]
        got = items(w, incident_of(w, anoms), anoms)
        assert got[name][0] == x
        assert (
            got[name][2]["local_time"] == start.astimezone(w.tz).strftime("%H:%M")
            and got[name][2]["resolution_min"] == 5
        )


def test_onset_minute_not_informative_for_hourly_tests(kz_watch):
    w = kz_watch
    anoms = [
        anomaly(
            T0,
            asn=9198,
            service="whatsapp",
            signal="service_failure_rate",
            family=Family.service,
            direction=Direction.rise,
        )
    ]
    got = items(w, incident_of(w, anoms), anoms)
    assert got["onset_on_the_hour"][0] == 0.0 and "not informative" in got["onset_on_the_hour"][1]


def test_providers_together_and_staggered(kz_watch):
    w = kz_watch
    together = shutdown(w, T0, spread=2 * MIN)
    got = items(w, incident_of(w, together), together)
    assert got["providers_together"][0] == 1.0 and got["providers_together"][2] == {
        "providers": 5,
        "onset_spread_min": 8.0,
    }
    staggered = [anomaly(T0 + 12 * MIN * i, asn=p.asn) for i, p in enumerate(w.providers[:3])]
    got = items(w, incident_of(w, staggered), staggered)
    assert got["providers_together"][0] == 0.0 and "staggered" in got["providers_together"][1]


def test_all_signals_agree_and_bgp_withdrawal(kz_watch):
    w = kz_watch
    full = shutdown(w, T0)
    got = items(w, incident_of(w, full), full)
    assert got["all_signals_agree"][0] == 1.0 and got["all_signals_agree"][2]["signals"] == 3
    assert got["bgp_withdrawal"][0] == 1.0 and "data_plane_only" not in got
    dark = shutdown(w, T0, signals=("active_probing", "telescope"))
    got = items(w, incident_of(w, dark), dark)
    assert got["all_signals_agree"][0] == 0.0 and got["all_signals_agree"][2]["of"] == 3
    assert got["data_plane_only"][0] == 1.0 and "bgp_withdrawal" not in got


def test_a_signal_without_data_is_no_evidence(kz_watch):
    """Data sets with no BGP at all (a connectivity index only): quiet routes cannot be
    claimed, nor a disagreeing signal.
    """
    dark = shutdown(kz_watch, T0, signals=("active_probing", "telescope"))
    inc = incident_of(kz_watch, dark)
    got = items(kz_watch, inc, dark, AttributionContext(observed_signals={"active_probing", "telescope"}))
    assert "data_plane_only" not in got and "bgp_withdrawal" not in got
    assert got["all_signals_agree"][0] == 1.0 and got["all_signals_agree"][2]["of"] == 2
    got = items(kz_watch, inc, dark, AttributionContext(observed_signals={"bgp", "active_probing", "telescope"}))
    assert got["data_plane_only"][0] == 1.0  # BGP data was there and did not fall: that is evidence


def test_recurrence_one_day_later_and_schedule(kz_watch):
    w = kz_watch
    anoms = [anomaly(T0, asn=9198)]
    inc = incident_of(w, anoms)
    yesterday = inc.model_copy(update={"id": "yesterday", "start": T0 - timedelta(days=1, minutes=5)})
    got = items(w, inc, anoms, AttributionContext(past=[yesterday]))
    assert got["recurrence_one_day"][0] == 1.0 and got["recurrence_one_day"][2] == {
        "hours_earlier": pytest.approx(24.08, abs=0.01)
    }
    three_days = yesterday.model_copy(update={"start": T0 - timedelta(days=3)})
    got = items(w, inc, anoms, AttributionContext(past=[three_days]))
    assert "recurrence_one_day" not in got and got["recurrence_same_time"][2] == {"days_earlier": 3}
    other_time = yesterday.model_copy(update={"start": T0 - timedelta(days=1, hours=3)})
    assert "recurrence_one_day" not in items(w, inc, anoms, AttributionContext(past=[other_time]))


def test_recurrence_from_earlier_events_in_the_same_batch(kz_watch):
    w = kz_watch
    day1 = [anomaly(T0 - timedelta(days=1), asn=9198)]
    day2 = [anomaly(T0, asn=9198, signal="active_probing")]
    ticks = [T0 - timedelta(days=1), T0 - timedelta(days=1) + H, T0]
    res = classify(
        w,
        None,
        ticks,
        [
            ev(ticks[0], "opened", day1[0]),
            ev(ticks[1], "closed", day1[0].model_copy(update={"end": ticks[0] + 30 * MIN})),
            ev(T0, "opened", day2[0]),
        ],
    )
    out = attribute(w, res.events, {}, day1 + day2)
    last = out[-1].incident
    assert last.start == T0 and any(e.name == "recurrence_one_day" and e.weight > 0 for e in last.evidence)


def test_election_milestone_and_political_event(kz_watch):
    w = kz_watch.model_copy(
        update={"events": [ContextEvent(name="opposition rally", type="protest", at="2019-06-10T03:00")]}
    )
    anoms = [anomaly(T0 + 10 * MIN, asn=9198)]
    got = items(w, incident_of(w, anoms), anoms)
    assert got["election_milestone"][2] == {"milestone": "polls_close", "minutes": 10.0}
    assert got["election_milestone"][0] == pytest.approx(1 - 10 / 240)
    anoms = [anomaly(datetime(2019, 6, 9, 21, 40, tzinfo=timezone.utc), asn=9198)]  # 03:40 local, 40 min from the rally
    got = items(w, incident_of(w, anoms), anoms)
    assert "election_milestone" not in got and got["political_event"][2] == {
        "event": "opposition rally",
        "minutes": 40.0,
    }


def test_censorship_methods_from_probe_outage_types(kz_watch):
    w = kz_watch
    anoms = [
        anomaly(
            QUIET,
            asn=asn,
            service="whatsapp",
            signal="probe_success_rate",
            family=Family.service,
            source="webprobe",
            evidence={"outage_types": {"dns_nxdomain": 7, "ok": 1}},
        )
        for asn in (29355, 21299)
    ]
    anoms.append(
        anomaly(
            QUIET,
            asn=48503,
            service="whatsapp",
            signal="probe_outage_tls_failure",
            family=Family.service,
            direction=Direction.rise,
            source="webprobe",
        )
    )
    inc = incident_of(w, anoms)
    got = items(w, inc, anoms)
    assert got["censorship_method"][0] == 1.0
    assert got["censorship_method"][2] == {"methods": ["dns_nxdomain", "tls_failure"], "networks": 3}
    assert got["service_specific"][0] == 1.0 and "mobile-only (every mobile network)" in got["service_specific"][1]
    scored = attribute_incident(w, inc, anoms)
    assert scored.cause is Cause.government_directed and scored.cause_confidence > 0.85


def test_gradual_change_from_the_depth_profile(kz_watch):
    w = kz_watch
    # 12 points at 5 min, peak 90% but on average 40%: a slow slide, not a switch
    slow = [anomaly(QUIET, asn=9198, depth=0.9, points=12, severity=0.4 * 100 * 5 * 12)]
    got = items(w, incident_of(w, slow), slow)
    assert got["gradual_change"][0] == 1.0 and got["gradual_change"][2] == {
        "mean_to_peak": pytest.approx(0.444, abs=0.001)
    }
    sharp = [anomaly(QUIET, asn=9198, depth=0.9, points=12, severity=0.88 * 100 * 5 * 12)]
    assert items(w, incident_of(w, sharp), sharp)["gradual_change"][0] == 0.0


def test_single_network_and_single_upstream(kz_watch):
    w = kz_watch.model_copy(deep=True)
    for p in w.providers:
        p.upstreams = [9198] if p.asn in (29355, 21299) else [174]
    anoms = [anomaly(QUIET, asn=29355), anomaly(QUIET, asn=21299)]
    inc = incident_of(w, anoms)
    got = items(w, inc, anoms)
    assert got["single_upstream"][2] == {"upstream": 9198, "networks": 2}
    one = [anomaly(QUIET, asn=35168)]
    scored = attribute_incident(w, incident_of(w, one), one)
    assert any(e.name == "single_network" and e.weight < 0 for e in scored.evidence)
    assert scored.cause is Cause.technical


@pytest.mark.parametrize(
    "etype,cause",
    [("power_outage", Cause.power_outage), ("weather", Cause.weather_or_disaster), ("cable_cut", Cause.cable_cut)],
)
def test_recorded_power_weather_or_cable_event_counts_against(kz_watch, etype, cause):
    w = kz_watch
    anoms = shutdown(w, T0)  # on the hour, at polls close, all providers: government-looking by itself
    inc = incident_of(w, anoms)
    assert attribute_incident(w, inc, anoms).cause is Cause.government_directed
    event = ExternalEvent(name="grid failure", type=etype, start=T0 - 20 * MIN, source="KEGOC")
    scored = attribute_incident(w, inc, anoms, AttributionContext(events=[event]))
    item = next(e for e in scored.evidence if e.name in ("power_or_weather_event", "cable_event"))
    assert item.supports is cause and item.weight < 0 and item.numbers["minutes_before_onset"] == 20.0
    assert scored.cause is cause


def test_other_countries_at_the_same_time(kz_watch):
    w = kz_watch
    # the country falls with them
    anoms = [anomaly(QUIET, asn=p.asn) for p in w.providers] + [anomaly(QUIET, depth=0.95)]
    inc = incident_of(w, anoms)
    kg = inc.model_copy(update={"id": "kg", "country": "KG", "start": QUIET + 10 * MIN})
    got = items(w, inc, anoms, AttributionContext(others=[kg]))
    assert got["other_countries_same_time"][2] == {"countries": ["KG"]}
    scored = attribute_incident(w, inc, anoms, AttributionContext(others=[kg]))
    assert scored.cause is Cause.cable_cut
    # a neighbour's outage the coordinator recorded counts the same
    w2 = w.model_copy(
        update={
            "events": [
                ContextEvent(name="Kyrgyzstan dark", type="neighbour_outage", at="2019-06-10T04:20", country="KG")
            ]
        }
    )
    assert items(w2, inc, anoms)["other_countries_same_time"][2] == {"countries": ["KG"]}


def test_cloudflare_radar_label(kz_watch):
    w = kz_watch
    anoms = [anomaly(QUIET, asn=9198)]
    inc = incident_of(w, anoms)
    radar = ExternalEvent(
        name="Radar annotation", type="radar_outage", start=QUIET, cause="POWER_OUTAGE", source="radar"
    )
    scored = attribute_incident(w, inc, anoms, AttributionContext(events=[radar]))
    item = next(e for e in scored.evidence if e.name == "radar_label")
    assert item.supports is Cause.power_outage and item.weight < 0 and scored.cause is Cause.power_outage
    gov = radar.model_copy(update={"cause": "GOVERNMENT_DIRECTED"})
    assert (
        next(
            e
            for e in attribute_incident(w, inc, anoms, AttributionContext(events=[gov])).evidence
            if e.name == "radar_label"
        ).weight
        > 0
    )


def test_score_item_and_playbook_weights(kz_watch):
    w = kz_watch
    anoms = shutdown(w, T0)
    scored = attribute_incident(w, incident_of(w, anoms), anoms)
    assert scored.evidence[-1].name == "score"
    p = scored.evidence[-1].numbers["p_government"]
    assert scored.cause_confidence == pytest.approx(p, abs=1e-3) and p > 0.9
    weights = [abs(e.weight) for e in scored.evidence[:-1]]
    assert weights == sorted(weights, reverse=True)
    muted = w.model_copy(update={"attribution": w.attribution.model_copy(update={"weights": {"bias": -20.0}})})
    assert attribute_incident(muted, incident_of(w, anoms), anoms).cause is not Cause.government_directed


def test_no_evidence_either_way_is_unknown(kz_watch):
    anoms = [anomaly(QUIET, region="KZ-ALA", signal="active_probing")]
    w = kz_watch.model_copy(update={"signals": {k: v for k, v in kz_watch.signals.items() if k != "bgp"}})
    scored = attribute_incident(w, incident_of(w, anoms), anoms)
    assert scored.cause is Cause.unknown and scored.cause_confidence == 0.0


# --- scenarios from the simulator ---------------------------------------------------------------


def _run(watch, events, seed=5):
    first = min(e.start for e in events)
    last = max(e.end for e in events)
    sc = simulate(watch, watch.at_offset(timedelta(0)) - timedelta(hours=26), last + 2 * H, events, seed=seed)
    return analyse(watch, None, watch.tick_times(first - 30 * MIN, last + 2 * H), sc.observations)


def test_scenario_gradual_data_plane_loss_is_not_called_a_shutdown(kz_watch):
    w = kz_watch
    start = w.at_offset(timedelta(hours=13, minutes=10))
    out = _run(
        w,
        [
            EventSpec(
                kind=IncidentKind.regional_outage,
                start=start,
                end=start + 3 * H,
                regions=["KZ-ALA"],
                depth=0.9,
                ramp=timedelta(minutes=80),
                bgp=False,
                cause=Cause.power_outage,
            )
        ],
    )
    inc = next(i for i in out.incidents if i.kind is IncidentKind.regional_outage)
    names = {e.name: e for e in inc.evidence}
    assert names["data_plane_only"].weight < 0 and names["gradual_change"].weight < 0
    assert names["gradual_change"].numbers["mean_to_peak"] < 0.75
    assert inc.cause is not Cause.government_directed


def test_scenario_switch_at_polls_close_is_government_directed(kz_watch):
    w = kz_watch
    start = w.at_offset(timedelta(hours=20))
    out = _run(w, [EventSpec(kind=IncidentKind.nationwide_outage, start=start, end=start + H, depth=0.97)])
    (inc,) = [i for i in out.incidents if i.kind is IncidentKind.nationwide_outage]
    fired = {e.name for e in inc.evidence if e.weight > 0}
    assert {
        "onset_on_the_hour",
        "nationwide_scope",
        "providers_together",
        "all_signals_agree",
        "election_milestone",
        "bgp_withdrawal",
    } <= fired
    assert inc.cause is Cause.government_directed and inc.cause_confidence > 0.9
    assert inc.evidence[-1].numbers["p_government"] == pytest.approx(inc.cause_confidence, abs=1e-3)


def test_scope_objects_are_kept(kz_watch):
    inc = Incident(
        id="x",
        watch="w",
        country="KZ",
        family=Family.connectivity,
        kind=IncidentKind.network_outage,
        scope=Scope(asns=[1]),
        start=QUIET,
        detected_at=QUIET,
        updated_at=QUIET,
    )
    assert attribute_incident(kz_watch, inc).scope.asns == [1]


def test_live_ticks_attribute_as_a_replay_does(kz_watch):
    import bisect

    from pollwatch.pipeline import WatchState

    w = kz_watch
    start = w.at_offset(timedelta(hours=19, minutes=30))
    specs = [
        EventSpec(
            kind=IncidentKind.regional_outage,
            start=start,
            end=start + 2 * H,
            regions=["KZ-ALA"],
            ramp=timedelta(minutes=30),
        ),
        EventSpec(kind=IncidentKind.nationwide_outage, start=start + 30 * MIN, end=start + H),
    ]
    sc = simulate(w, w.at_offset(timedelta(0)) - timedelta(hours=26), start + 3 * H, specs, seed=9)
    ticks = w.tick_times(start - 10 * MIN, start + 3 * H)
    replayed = analyse(w, None, ticks, sc.observations)
    state, known, live = WatchState(), {}, []
    times = [o.time for o in sc.observations]
    previous = None
    for tick in ticks:
        lo = bisect.bisect_left(times, previous - timedelta(minutes=10)) if previous else 0
        out = analyse(w, state, [tick], sc.observations[lo : bisect.bisect_right(times, tick)], known)
        previous = tick
        state = WatchState.model_validate(out.state.model_dump(mode="json"))
        known.update({i.id: i for i in out.incidents})
        live += out.events

    def key(e):
        return (
            e.tick,
            e.change,
            e.incident.id,
            e.incident.cause,
            round(e.incident.cause_confidence, 3),  # noqa: E731
            [(x.name, x.weight) for x in e.incident.evidence],
        )

    assert [key(e) for e in live] == [key(e) for e in replayed.events]
    assert len(live) >= 2


def test_iodas_own_outage_records_reach_attribution(kz_watch):
    """IODA's alerts and events, as the IODA client collects them, name the signals IODA saw fall: they complete
    `all_signals_agree` where the watch's own detector missed one, and are reported (not weighed) as `ioda_record`."""
    import asyncio

    from tests.fakes.observatories import IodaFake, fast_config, ioda_alert, ioda_event

    from pollwatch.attribute import events_from_corroborations
    from pollwatch.sources import IodaSource

    w = kz_watch
    own = shutdown(w, T0, signals=("bgp", "active_probing"))  # the telescope drop stayed under the watch's threshold
    inc = incident_of(w, own)
    ctx = AttributionContext(observed_signals={"bgp", "active_probing", "telescope"})
    assert items(w, inc, own, ctx)["all_signals_agree"][0] == 0.0
    with IodaFake() as ioda:
        ioda.events.append(ioda_event("country", "KZ", T0 + 5 * MIN, T0 + 2 * H, ds="merit-nt"))
        ioda.alerts.append(ioda_alert("asn", "9198", T0 + 10 * MIN, ds="ping-slash24", level="critical"))
        # the recovery: not an outage
        ioda.alerts.append(ioda_alert("country", "KZ", T0 + 3 * H, ds="bgp", level="normal"))
        ioda.alerts.append(ioda_alert("asn", "9198", T0 - 6 * H, ds="bgp"))  # hours before: another outage
        res = asyncio.run(
            IodaSource(fast_config(ioda.url, options={"datasources": ["bgp"]})).collect(w, T0 - 7 * H, T0 + 4 * H)
        )
    assert len(res.corroborations) == 4
    ctx = ctx.model_copy(update={"events": events_from_corroborations(res.corroborations)})
    assert len(ctx.events) == 3
    got = items(w, inc, own, ctx)
    assert got["all_signals_agree"][0] == 1.0 and got["all_signals_agree"][2]["ioda_records"] == [
        "active_probing",
        "telescope",
    ]
    assert "IODA's records show active_probing, telescope" in got["all_signals_agree"][1]
    assert got["ioda_record"][2]["records"] == 2 and got["ioda_record"][2]["signals"] == ["active_probing", "telescope"]
    scored = attribute_incident(w, inc, own, ctx)
    record = next(e for e in scored.evidence if e.name == "ioda_record")
    assert record.weight == 0 and "IODA's own detector recorded it" in record.detail
    agree = next(e for e in scored.evidence if e.name == "all_signals_agree")
    assert agree.weight > 0
    # a record about a network outside the incident says nothing about it
    other = [e.model_copy(update={"entity": "KZ/asn=64500"}) for e in ctx.events if e.entity != "KZ"]
    assert "ioda_record" not in items(w, inc, own, ctx.model_copy(update={"events": other}))


def test_evidence_the_watch_does_not_have_is_absent_and_said(kz_watch):
    """A regional latency rise in a watch without providers: 'services slowed down' is not judged, not maximal."""
    from pollwatch.alerts import render_text
    from pollwatch.models import IncidentEvent

    w = kz_watch.model_copy(update={"providers": []})
    rise = [
        anomaly(QUIET, region="KZ-KAR", signal="rtt_ms", family=Family.performance, direction=Direction.rise, depth=2.0)
    ]
    inc = incident_of(w, rise)
    got = items(w, inc, rise)
    assert got["service_specific"][0] == 0.0 and "could not judge" in got["service_specific"][1]
    assert got["service_specific"][2]["not_judged"] == "the watch lists no providers"
    scored = attribute_incident(w, inc, rise)
    assert scored.cause is not Cause.government_directed
    assert "not judged: service_specific (the watch lists no providers)" in scored.evidence[-1].detail
    text = render_text(w, IncidentEvent(tick=QUIET, change="opened", incident=scored))
    assert (
        "    - not judged: could not judge whether connectivity stayed normal" in text and "0 provider(s)" not in text
    )
    # with providers but only the pooled country series moving, and with no connectivity data observed: absent too
    pooled = [
        anomaly(
            QUIET, service="whatsapp", signal="service_failure_rate", family=Family.service, direction=Direction.rise
        )
    ]
    assert items(kz_watch, incident_of(kz_watch, pooled), pooled)["service_specific"][0] == 0.0
    two = [
        anomaly(
            QUIET,
            asn=a,
            service="whatsapp",
            signal="service_failure_rate",
            family=Family.service,
            direction=Direction.rise,
        )
        for a in (29355, 21299)
    ]
    assert items(kz_watch, incident_of(kz_watch, two), two)["service_specific"][0] == 1.0
    blind = AttributionContext(observed_signals={"service_failure_rate"})
    assert items(kz_watch, incident_of(kz_watch, two), two, blind)["service_specific"][0] == 0.0
