"""Classification: grouping anomalies into incidents, kind and scope, kind changes, growth, shrinkage, resolution."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pollwatch.baseline import baselined
from pollwatch.classify import classify, network_label
from pollwatch.models import Anomaly, AnomalyEvent, Direction, Entity, Family, IncidentKind, stable_id
from pollwatch.pipeline import analyse
from pollwatch.simulate import EventSpec, demo_range, election_day_events, simulate

T0 = datetime(2019, 6, 9, 14, 0, tzinfo=timezone.utc)  # 20:00 in Almaty
MIN = timedelta(minutes=1)


def anomaly(
    start: datetime,
    *,
    region: str | None = None,
    asn: int | None = None,
    service: str | None = None,
    signal: str = "bgp",
    family: Family = Family.connectivity,
    level: str = "critical",
    depth: float = 0.9,
    end: datetime | None = None,
    direction: Direction = Direction.drop,
    **kw,
) -> Anomaly:
    entity = Entity(country="KZ", region=region, asn=asn, service=service)
    return Anomaly(
        id=stable_id(signal, entity.key, start),
        watch="kz-2019-presidential",
        source=kw.pop("source", "ioda"),
        signal=signal,
        family=family,
        entity=entity,
        direction=direction,
        start=start,
        end=end,
        detected_at=start,
        level=level,
        depth=depth,
        **kw,
    )


def ev(tick: datetime, change: str, a: Anomaly) -> AnomalyEvent:
    return AnomalyEvent(tick=tick, change=change, anomaly=a)


def closed(a: Anomaly, end: datetime) -> Anomaly:
    return a.model_copy(update={"end": end})


# --- scenario: every kind on the simulated election day -----------------------------------------


@pytest.fixture(scope="module")
def election_day():
    from pollwatch.playbook import load_watch
    from tests.conftest import KZ_WATCH

    w = load_watch(KZ_WATCH)
    _, day, end = demo_range(w)
    sc = simulate(w, day - timedelta(hours=30), end, election_day_events(w), seed=3)
    w = baselined(w, sc.observations, day)  # providers' and regions' address space, as the baseline flow measures it
    lag = max(c.lag for c in w.signals.values())  # ticks go on after the data ends, until its last hour is judged
    out = analyse(w, None, w.tick_times(day, end + lag), sc.observations)
    return w, sc, out


def _hit(out, label):
    return [
        i
        for i in out.incidents
        if i.kind is label.kind and i.start <= label.end and (i.end or label.end) >= label.start
    ]


def test_every_kind_with_its_scope(election_day):
    w, sc, out = election_day
    assert sorted(i.kind.value for i in out.incidents) == sorted(lb.kind.value for lb in sc.labels)
    by_kind = {i.kind: i for i in out.incidents}
    nation = by_kind[IncidentKind.nationwide_outage]
    assert nation.scope.share >= 0.97 and nation.scope.asns == sorted(p.asn for p in w.providers)
    assert nation.scope.network_types == ["fixed", "mobile"] and len(nation.scope.regions) == len(w.regions)
    region = by_kind[IncidentKind.regional_outage]
    assert region.scope.regions == ["KZ-YUZ"] and 0 < region.scope.share < w.classification.nationwide_share
    network = by_kind[IncidentKind.network_outage]
    assert (
        network.scope.providers == ["Transtelecom"]
        and network.scope.asns == [35168]
        and network.scope.network_types == ["fixed"]
    )
    service = by_kind[IncidentKind.service_block]
    assert service.scope.services == ["periscope"] and len(service.scope.asns) >= 3
    throttle = by_kind[IncidentKind.throttling]
    assert throttle.scope.network_types == ["mobile"] and throttle.scope.services == ["twitter"]
    assert network_label(w, throttle.scope.asns).startswith("mobile-only")
    circ = by_kind[IncidentKind.circumvention_block]
    assert set(circ.scope.services) <= {"tor", "psiphon", "openvpn"}
    for inc in out.incidents:
        assert inc.kind_history[0]["to"] == inc.kind_history[-1]["to"] == inc.kind.value or len(inc.kind_history) > 1
        assert inc.status == "resolved" or inc.kind is IncidentKind.circumvention_block


def test_regional_outage_grows_into_nationwide_in_simulation(kz_watch):
    w = kz_watch
    day = w.at_offset(timedelta(0))
    start = w.at_offset(timedelta(hours=19))
    events = [
        EventSpec(kind=IncidentKind.regional_outage, start=start, end=start + timedelta(hours=2), regions=["KZ-ALA"]),
        EventSpec(
            kind=IncidentKind.nationwide_outage,
            start=start + timedelta(minutes=40),
            end=start + timedelta(hours=1, minutes=30),
        ),
    ]
    sc = simulate(w, day - timedelta(hours=26), start + timedelta(hours=3), events, seed=11)
    out = analyse(w, None, w.tick_times(start - timedelta(minutes=30), start + timedelta(hours=3)), sc.observations)
    assert len(out.incidents) == 1
    inc = out.incidents[0]
    kinds = [h["to"] for h in inc.kind_history]
    assert kinds[0] == "regional_outage" and "nationwide_outage" in kinds
    changed = [
        e
        for e in out.events
        if e.change == "updated"
        and any("kind changed from regional_outage to nationwide_outage" in r for r in e.reasons)
    ]
    assert len(changed) == 1
    assert inc.status == "resolved"


# --- grouping rules on hand-made anomalies ----------------------------------------------------


def fifths(w):
    """The watch with every provider and region holding a fifth of the country's address space."""
    return w.model_copy(
        update={
            "providers": [p.model_copy(update={"share": 0.2}) for p in w.providers],
            "regions": [r.model_copy(update={"share": 0.2}) for r in w.regions],
        }
    )


def test_kind_change_recorded_and_scope_grows_then_shrinks(kz_watch):
    w = fifths(kz_watch)
    reg = anomaly(T0, region="KZ-ALA")
    # three providers fall, and the country's own series with them
    asns = [anomaly(T0 + 20 * MIN, asn=p.asn) for p in w.providers[:3]] + [anomaly(T0 + 20 * MIN, depth=0.55)]
    ticks = [T0, T0 + 20 * MIN, T0 + 60 * MIN, T0 + 70 * MIN, T0 + 200 * MIN]
    events = [ev(T0, "opened", reg)] + [ev(T0 + 20 * MIN, "opened", a) for a in asns]
    events += [ev(T0 + 60 * MIN, "closed", closed(a, T0 + 55 * MIN)) for a in asns]
    events += [ev(T0 + 70 * MIN, "closed", closed(reg, T0 + 65 * MIN))]
    res = classify(w, None, ticks, events)
    changes = [(e.change, e.incident.kind.value) for e in res.events]
    # growth changes the kind; recovery only shrinks the scope (the kind stays what the incident became)
    assert changes == [
        ("opened", "regional_outage"),
        ("updated", "nationwide_outage"),
        ("updated", "nationwide_outage"),
        ("resolved", "nationwide_outage"),
    ]
    grown = res.events[1]
    assert any(r.startswith("kind changed from regional_outage to nationwide_outage") for r in grown.reasons)
    assert any(r.startswith("scope grew") and "Kazakhtelecom (AS9198)" in r for r in grown.reasons)
    assert grown.incident.scope.share == 0.6 and grown.incident.version == 2
    shrunk = res.events[2]
    assert any(r.startswith("back to normal") and "Kazakhtelecom (AS9198)" in r for r in shrunk.reasons)
    # an open incident's scope is everything it has covered so far, with what is back to normal said so
    assert shrunk.incident.scope.asns == sorted(p.asn for p in w.providers[:3]) and shrunk.incident.scope.regions == [
        "KZ-ALA"
    ]
    assert len(shrunk.incident.scope.recovered) == 3 and "KZ-ALA" not in shrunk.incident.scope.recovered
    assert shrunk.incident.scope.share == 0.6
    final = res.events[-1].incident
    assert [(h["from"], h["to"]) for h in final.kind_history] == [
        (None, "regional_outage"),
        ("regional_outage", "nationwide_outage"),
    ]
    # everything it covered
    assert final.scope.asns == sorted(p.asn for p in w.providers[:3]) and final.scope.regions == ["KZ-ALA"]


def test_resolved_within_two_native_steps_of_the_end(kz_watch):
    w = kz_watch
    a = anomaly(T0, asn=9198)
    end = T0 + 30 * MIN
    # BGP's step is 5 min: resolved 10 min after the data shows the end (its detector's recovery has already
    # waited), not after the playbook's 30 min
    recovery = 2 * w.signals["bgp"].step
    assert recovery < w.classification.recovery
    ticks = [T0, end + 5 * MIN, end + recovery - 5 * MIN, end + recovery]
    res = classify(w, None, ticks, [ev(T0, "opened", a), ev(end + 5 * MIN, "closed", closed(a, end))])
    assert [e.change for e in res.events] == ["opened", "resolved"]
    assert res.events[-1].tick == end + recovery and res.events[-1].incident.end == end
    assert res.state.incidents == {}


def test_unrelated_networks_apart_related_ones_together(kz_watch):
    w = kz_watch
    first = anomaly(T0, asn=9198)
    # another network, hours later, while the first is still down
    later_other = anomaly(T0 + 3 * timedelta(hours=1), asn=29355)
    soon_other = anomaly(T0 + 10 * MIN, asn=48503)  # another network within minutes: one event
    same_net = anomaly(T0 + 4 * timedelta(hours=1), asn=9198, signal="active_probing")  # same network, another signal
    ticks = sorted({T0, T0 + 10 * MIN, T0 + 3 * timedelta(hours=1), T0 + 4 * timedelta(hours=1)})
    res = classify(
        w,
        None,
        ticks,
        [
            ev(T0, "opened", first),
            ev(T0 + 10 * MIN, "opened", soon_other),
            ev(T0 + 3 * timedelta(hours=1), "opened", later_other),
            ev(T0 + 4 * timedelta(hours=1), "opened", same_net),
        ],
    )
    assert len(res.state.incidents) == 2
    groups = sorted(sorted(i.anomaly_ids) for i in res.state.incidents.values())
    assert sorted([sorted([first.id, soon_other.id, same_net.id]), [later_other.id]]) == groups


def test_regions_of_an_hourly_index_falling_hours_apart_are_one_incident_that_turns_nationwide(kz_watch):
    from pollwatch.playbook import SignalConfig

    w = kz_watch.model_copy(deep=True)
    w.signals["connectivity_index"] = SignalConfig(source="monash", step="1h", warning=0.5, critical=0.3)
    H = timedelta(hours=1)
    regions = [r.code for r in w.regions]  # five regions
    falls = [
        anomaly(T0 + i * H, region=r, signal="connectivity_index", source="monash") for i, r in enumerate(regions[:3])
    ]
    # six hours after the last
    later = anomaly(T0 + 8 * H, region=regions[4], signal="connectivity_index", source="monash")
    events = [ev(a.start, "opened", a) for a in falls + [later]]
    res = classify(w, None, [a.start for a in falls + [later]], events)
    incidents = sorted(res.state.incidents.values(), key=lambda i: i.start)
    assert len(incidents) == 2
    first = incidents[0]
    # one hour apart on an hourly signal: one event, its scope lists the regions, nationwide at the third (3 of 5)
    assert first.scope.regions == sorted(regions[:3]) and first.kind is IncidentKind.nationwide_outage
    assert [h["to"] for h in first.kind_history] == ["regional_outage", "nationwide_outage"]
    assert incidents[1].scope.regions == [regions[4]]
    # a 5-minute signal keeps the playbook's 30 minutes: the same falls on BGP are three incidents
    bgp = [anomaly(T0 + i * H, region=r) for i, r in enumerate(regions[:3])]
    res = classify(w, None, [a.start for a in bgp], [ev(a.start, "opened", a) for a in bgp])
    assert len(res.state.incidents) == 3


def test_severity_multiplies_corroborating_signals(kz_watch):
    # the same drop seen by BGP and active probing outranks twice the drop seen by BGP alone
    one = [anomaly(T0, asn=9198, severity=4000.0), anomaly(T0 + MIN, asn=35168, severity=4000.0)]
    two = [
        anomaly(T0, asn=9198, severity=4000.0),
        anomaly(T0 + MIN, asn=9198, signal="active_probing", severity=4000.0),
    ]
    (alone,) = classify(kz_watch, None, [T0 + MIN], [ev(T0 + MIN, "opened", a) for a in one]).state.incidents.values()
    (both,) = classify(kz_watch, None, [T0 + MIN], [ev(T0 + MIN, "opened", a) for a in two]).state.incidents.values()
    assert alone.severity == 8000.0 and both.severity == 4000.0 * 4000.0


def test_a_later_incident_dated_back_to_a_resolved_ones_start_is_another_incident(kz_watch):
    H = timedelta(hours=1)
    kw = dict(signal="service_failure_rate", family=Family.service, direction=Direction.rise, source="ooni")
    pooled = anomaly(T0, service="telegram", **kw)
    late = anomaly(T0, asn=9198, service="telegram", **kw)  # a slow CUSUM on one network, dated back to T0
    events = [
        ev(T0, "opened", pooled),
        ev(T0 + 2 * H, "closed", closed(pooled, T0 + H)),
        ev(T0 + 17 * H, "opened", late),
    ]
    res = classify(kz_watch, None, [T0, T0 + 2 * H, T0 + 17 * H], events)
    opened = [e.incident for e in res.events if e.change == "opened"]
    assert [e.change for e in res.events] == ["opened", "resolved", "opened"]
    assert opened[0].id != opened[1].id and opened[0].detected_at == T0  # the first alert keeps its own thread


def test_families_stay_apart_and_region_relates_to_its_providers(kz_watch):
    w = kz_watch.model_copy(deep=True)
    w.providers[0].regions = ["KZ-ALA"]
    reg = anomaly(T0, region="KZ-ALA")
    prov = anomaly(T0 + 2 * timedelta(hours=1), asn=w.providers[0].asn)  # serves the region: same incident
    svc = anomaly(
        T0 + 5 * MIN,
        asn=9198,
        service="whatsapp",
        signal="service_failure_rate",
        family=Family.service,
        direction=Direction.rise,
        source="ooni",
    )
    ticks = [T0, T0 + 5 * MIN, T0 + 2 * timedelta(hours=1)]
    res = classify(
        w,
        None,
        ticks,
        [ev(T0, "opened", reg), ev(T0 + 5 * MIN, "opened", svc), ev(T0 + 2 * timedelta(hours=1), "opened", prov)],
    )
    kinds = sorted(i.kind.value for i in res.state.incidents.values())
    assert kinds == ["regional_outage", "service_block"]


@pytest.mark.parametrize("share,kind", [(0.5, "nationwide_outage"), (0.7, "network_outage")])
def test_nationwide_share_is_configurable(kz_watch, share, kind):
    w = fifths(kz_watch).model_copy(
        update={"classification": kz_watch.classification.model_copy(update={"nationwide_share": share})}
    )
    events = [ev(T0, "opened", anomaly(T0, asn=p.asn)) for p in w.providers[:3]] + [
        ev(T0, "opened", anomaly(T0, depth=0.55))
    ]
    res = classify(w, None, [T0], events)
    (inc,) = res.state.incidents.values()
    assert inc.kind.value == kind and inc.scope.share == 0.6


def test_address_space_share_from_country_depth(kz_watch):
    # the country's BGP total lost 70% of its /24s: nationwide even though no finer series is down
    events = [ev(T0, "opened", anomaly(T0, depth=0.7)), ev(T0, "opened", anomaly(T0, asn=9198))]
    (inc,) = classify(kz_watch, None, [T0], events).state.incidents.values()
    assert inc.kind is IncidentKind.nationwide_outage and inc.scope.share == 0.7


def test_providers_weigh_their_address_space_not_their_number(kz_watch):
    """Two providers, one of them (a third of the country) dark: the country falls by a third, a network outage."""
    w = kz_watch.model_copy(
        update={"providers": [p.model_copy(update={"share": s}) for p, s in zip(kz_watch.providers[:2], (0.4, 0.33))]}
    )
    down = [anomaly(T0, asn=w.providers[1].asn, depth=0.95), anomaly(T0, depth=0.33, level="warning")]
    (inc,) = classify(w, None, [T0], [ev(T0, "opened", a) for a in down]).state.incidents.values()
    assert inc.kind is IncidentKind.network_outage and inc.scope.share == 0.33
    # every provider the watch lists dark, but the country's series holds (other networks carry most of it)
    down = [anomaly(T0, asn=p.asn) for p in w.providers] + [anomaly(T0, depth=0.45, level="warning")]
    (inc,) = classify(w, None, [T0], [ev(T0, "opened", a) for a in down]).state.incidents.values()
    assert inc.kind is IncidentKind.network_outage and inc.scope.share == 0.73
    # a share nobody measured adds nothing (never 1/number of providers): the country's series decides
    unknown = kz_watch.model_copy(update={"providers": kz_watch.providers[:2]})
    (inc,) = classify(
        unknown, None, [T0], [ev(T0, "opened", anomaly(T0, asn=unknown.providers[0].asn))]
    ).state.incidents.values()
    assert inc.kind is IncidentKind.network_outage and inc.scope.share == 0.0


@pytest.mark.parametrize(
    "share, country_drop, kind",
    [
        (0.54, 0.54, "network_outage"),  # a fixed-line incumbent with most of the /24s dark, mobile networks up
        (0.54, 0.9, "nationwide_outage"),  # the country fell far beyond that one network: others went too
        (0.9, 0.9, "nationwide_outage"),  # the one network is nearly the whole country (a monopoly)
    ],
)
def test_one_network_is_nationwide_only_when_it_is_nearly_the_whole_country(kz_watch, share, country_drop, kind):
    """One provider holding 54% of the address space dark and the country's series down 54% past critical: a
    network outage of 54% of the country, not a 'nationwide internet outage' (the other providers are up)."""
    rest = (1 - share) / 3
    w = kz_watch.model_copy(
        update={
            "providers": [
                p.model_copy(update={"share": s}) for p, s in zip(kz_watch.providers[:4], (share, rest, rest, rest))
            ]
        }
    )
    down = [anomaly(T0, asn=w.providers[0].asn, depth=0.97), anomaly(T0, depth=country_drop)]
    (inc,) = classify(w, None, [T0], [ev(T0, "opened", a) for a in down]).state.incidents.values()
    assert inc.kind.value == kind and inc.scope.share == max(share, country_drop)


def test_one_region_is_nationwide_only_when_it_is_nearly_the_whole_country(kz_watch):
    """The capital region holding 60% of the address space cut is a regional outage; it and another region are
    nationwide."""
    shares = {"KZ-ALA": 0.6, "KZ-AST": 0.2}
    w = kz_watch.model_copy(
        update={"regions": [r.model_copy(update={"share": shares.get(r.code, 0.05)}) for r in kz_watch.regions]}
    )
    (inc,) = classify(w, None, [T0], [ev(T0, "opened", anomaly(T0, region="KZ-ALA"))]).state.incidents.values()
    assert inc.kind is IncidentKind.regional_outage and inc.scope.share == 0.6
    both = [anomaly(T0, region="KZ-ALA"), anomaly(T0, region="KZ-AST")]
    (inc,) = classify(w, None, [T0], [ev(T0, "opened", a) for a in both]).state.incidents.values()
    assert inc.kind is IncidentKind.nationwide_outage and inc.scope.share == 0.8


def test_address_shares_are_measured_from_the_baseline(kz_watch):
    w = kz_watch.model_copy(
        update={"providers": kz_watch.providers[:2] + [kz_watch.providers[2].model_copy(update={"share": 0.05})]}
    )
    sc = simulate(w, T0 - timedelta(days=1), T0, [], seed=4, other_space=0.25)
    shares = {p.asn: p.share for p in baselined(w, sc.observations, T0).providers}
    # fixed networks have 900 /24s, mobile ones 350, unlisted ones a quarter of the country: 2150 / 0.75
    assert shares[9198] == pytest.approx(900 / 2866.7, abs=0.01) and shares[35168] == pytest.approx(
        900 / 2866.7, abs=0.01
    )
    assert shares[29355] == 0.05  # declared in the watch file: kept


def test_mobile_only_and_fixed_only_labels(kz_watch):
    mobile = [p.asn for p in kz_watch.providers if p.type == "mobile"]
    assert network_label(kz_watch, mobile) == "mobile-only (every mobile network)"
    assert network_label(kz_watch, mobile[:1]) == "mobile-only"
    assert network_label(kz_watch, [9198]) == "fixed-line only"
    assert network_label(kz_watch, [9198, mobile[0]]) == "mobile and fixed"
