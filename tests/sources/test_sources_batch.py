"""Several watches collected together (`Source.collect_many`): the same data per watch as collecting each alone,
from far fewer requests, and one watch's missing data stays that watch's gap."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from tests.fakes.observatories import observatories

from pollwatch.playbook import Provider, SourceConfig, Watch
from pollwatch.sources import make_source

T0 = datetime(2019, 6, 9, 6, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(hours=3)


def other_country(w: Watch, name: str, country: str, first_asn: int, providers: int) -> Watch:
    return w.model_copy(
        update={
            "name": name,
            "country": country,
            "regions": [],
            "providers": [Provider(asn=first_asn + i, name=f"{country} net {i}") for i in range(providers)],
        }
    )


@pytest.fixture
def watches(kz_watch):
    return [kz_watch, other_country(kz_watch, "uz", "UZ", 65000, 4), other_country(kz_watch, "kg", "KG", 65100, 3)]


def _config(url: str, **options) -> SourceConfig:
    return SourceConfig(base_url=url, timeout=timedelta(seconds=2), retries=0, rate_limit=0, options=options)


def _seen(result) -> set[tuple]:
    return {(o.signal, o.entity_key, o.time, o.value, o.count) for o in result.observations}


@pytest.mark.parametrize("name", ["ioda", "ooni", "ripestat", "radar"])
def test_a_batch_gives_each_watch_what_it_gets_alone_from_fewer_requests(name, watches, tmp_path, monkeypatch):
    monkeypatch.setenv("POLLWATCH_HOME", str(tmp_path))
    with observatories() as obs:
        fake = getattr(obs, name)
        kw = {"token": "radar-test-token"} if name == "radar" else {}
        options = {"cache": False} if name == "ooni" else {}
        if name == "radar":
            from tests.fakes.observatories import radar_annotation

            fake.annotations += [radar_annotation("UZ", T0, T1), radar_annotation("KZ", T0 + timedelta(hours=1), None)]
        alone = []
        for w in watches:
            src = make_source(name, w, config=_config(fake.url, **options), **kw)
            alone.append(asyncio.run(src.collect(w, T0, T1)))
        one_by_one = len(fake.requests)
        src = make_source(name, watches[0], config=_config(fake.url, **options), **kw)
        together = asyncio.run(src.collect_many([(w, T0, T1) for w in watches]))
        batched = len(fake.requests) - one_by_one
        assert fake.contract_problems() == []
    for a, b in zip(alone, together):
        assert _seen(a) == _seen(b) and a.gaps == b.gaps
        assert {c.id for c in a.corroborations} == {c.id for c in b.corroborations}
        assert b.requests > 0
    if name == "radar":
        assert [c.country for c in together[1].corroborations] == ["UZ"] and together[2].corroborations == []
    if name == "ripestat":  # one `resource` per call: the batch shares the client (its rate limit) and the cache
        assert batched == len(watches)
    else:
        assert batched * 2 <= one_by_one, (batched, one_by_one)


def test_a_network_the_observatory_does_not_know_is_a_gap_of_its_own_watch_only(watches, tmp_path, monkeypatch):
    monkeypatch.setenv("POLLWATCH_HOME", str(tmp_path))
    with observatories() as obs:
        obs.ioda.missing.add("65001")  # one of UZ's networks
        src = make_source("ioda", watches[0], config=_config(obs.ioda.url, corroboration=False))
        kz, uz, kg = asyncio.run(src.collect_many([(w, T0, T1) for w in watches]))
    assert kz.gaps == [] and kg.gaps == []
    assert {g.entity for g in uz.gaps} == {"UZ/asn=65001"} and len(uz.gaps) == 3  # bgp, active probing, telescope
    assert kz.observations and kg.observations and uz.observations


def test_a_failed_batched_request_is_a_gap_and_a_notice_for_each_watch_it_served(watches, tmp_path, monkeypatch):
    monkeypatch.setenv("POLLWATCH_HOME", str(tmp_path))
    with observatories() as obs:
        obs.ioda.fail("500", path="/signals/raw/country")
        src = make_source("ioda", watches[0], config=_config(obs.ioda.url, corroboration=False))
        results = asyncio.run(src.collect_many([(w, T0, T1) for w in watches]))
    for w, r in zip(watches, results):
        assert {g.entity for g in r.gaps} == {w.country}
        assert any("500" in n.message for n in r.notices)
        assert any(o.asn for o in r.observations)  # the networks' series still came


def test_a_network_in_two_countries_watches_carries_only_each_countrys_ooni_tests(kz_watch, tmp_path, monkeypatch):
    """OONI sums a network's tests over the countries a request lists: a carrier in both the KZ and KG watches
    (65500) blocked in KG only must not show KG's failures in the KZ watch, nor in KZ's pooled series."""
    monkeypatch.setenv("POLLWATCH_HOME", str(tmp_path))
    shared = Provider(asn=65500, name="a carrier in two countries")
    kz = kz_watch.model_copy(update={"providers": [*kz_watch.providers, shared]})
    kg = other_country(kz_watch, "kg", "KG", 65100, 3)
    kg = kg.model_copy(update={"providers": [*kg.providers, shared]})
    watches = [kz, kg, other_country(kz_watch, "uz", "UZ", 65000, 4), other_country(kz_watch, "tj", "TJ", 65200, 2)]
    with observatories() as obs:
        ooni = obs.ooni
        ooni.homes[65500] = {"KZ", "KG"}
        ooni.block("whatsapp", T0, T1, share=1.0, asn=65500, cc="KG")
        src = make_source("ooni", kz, config=_config(ooni.url, cache=False))
        alone = [asyncio.run(src.collect(w, T0, T1)) for w in watches]
        asked_alone = len(ooni.requests)
        ooni.requests.clear()
        together = asyncio.run(src.collect_many([(w, T0, T1) for w in watches]))
        hourly = [r for r in ooni.requests if r.query.get("axis_x") == "measurement_start_day"]
        asked = [(r.query["probe_cc"], r.query["probe_asn"]) for r in hourly]
        discovery = len(ooni.requests) - len(hourly)  # where the networks are measured (ooni_homes.py)
        assert ooni.contract_problems() == []
    assert discovery == 1
    for a, b in zip(alone, together):
        assert _seen(a) == _seen(b) and a.gaps == b.gaps
        assert b.requests == a.requests + discovery > 1  # the shared requests count for each watch they served

    def whatsapp(res, asn):
        return [o for o in res.observations if o.service == "whatsapp" and o.asn == asn]

    kz_res, kg_res = together[0], together[1]
    assert all(o.value == 1.0 and o.count in (9, 10) for o in whatsapp(kg_res, 65500))
    assert all(o.value == 0.0 and o.count in (9, 10) for o in whatsapp(kz_res, 65500))  # KZ's own tests only
    assert all(o.value == 0.0 for o in whatsapp(kz_res, None))  # KZ's pooled series: nothing blocked in KZ
    assert all(o.value and o.value > 0.2 for o in whatsapp(kg_res, None))
    # KZ and KG are asked alone; UZ and TJ (no network shared) still share their requests: 3 where alone took 4
    assert {cc for cc, asns in asked if "AS65500" in asns} == {"KZ", "KG"}
    assert {cc for cc, asns in asked if "AS65000" in asns or "AS65200" in asns} == {"TJ,UZ"}
    assert len(asked) * 4 == asked_alone * 3


@pytest.mark.parametrize("name", ["ioda", "ooni"])
def test_watches_of_a_batch_that_share_no_request_count_every_request_they_made(name, watches, tmp_path, monkeypatch):
    """Watches with different ranges share no request: each one's `requests` are its own, all of them counted."""
    monkeypatch.setenv("POLLWATCH_HOME", str(tmp_path))
    with observatories() as obs:
        fake = getattr(obs, name)
        src = make_source(name, watches[0], config=_config(fake.url, cache=False))
        jobs = [(w, T0 + timedelta(hours=i), T1 + timedelta(hours=i)) for i, w in enumerate(watches)]
        results = asyncio.run(src.collect_many(jobs))
        assert sum(r.requests for r in results) == len(fake.requests) > 0
