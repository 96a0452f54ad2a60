"""OONI batches and networks measured in several countries (pollwatch/sources/ooni_homes.py), on the fake OONI
server: a network one watch lists whose probes are in another of the batch's countries too is asked with its
watch's country alone, found by one request per batch a day; when that request fails, every country is asked
alone and the watches are told."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from tests.fakes.observatories import observatories

from pollwatch.models import NoticeLevel
from pollwatch.playbook import Provider, SourceConfig, Watch
from pollwatch.sources import make_source

T0 = datetime(2019, 6, 9, 6, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(hours=3)
ROAMING = 65003  # listed in the UZ watch only; TJ probes measure it too


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
def batch(kz_watch, tmp_path, monkeypatch):
    """UZ (65000-65003), TJ (65200-65201) and KG (65100-65102) watches, and the fake OONI knowing where each network
    is measured: 65003 in UZ and TJ, where TJ's probes see WhatsApp blocked on it."""
    monkeypatch.setenv("POLLWATCH_HOME", str(tmp_path))
    watches = [
        other_country(kz_watch, "uz", "UZ", 65000, 4),
        other_country(kz_watch, "tj", "TJ", 65200, 2),
        other_country(kz_watch, "kg", "KG", 65100, 3),
    ]
    with observatories() as obs:
        for w in watches:
            for p in w.providers:
                obs.ooni.homes[p.asn] = {w.country}
        obs.ooni.homes[ROAMING] = {"UZ", "TJ"}
        obs.ooni.block("whatsapp", T0 - timedelta(days=7), T1 + timedelta(days=7), share=1.0, asn=ROAMING, cc="TJ")
        yield watches, obs.ooni


def _config(url: str, **options) -> SourceConfig:
    return SourceConfig(base_url=url, timeout=timedelta(seconds=2), retries=0, rate_limit=0, options=options)


def _seen(result) -> set[tuple]:
    return {(o.signal, o.entity_key, o.time, o.value, o.count) for o in result.observations}


def _whatsapp(result, asn):
    return [o for o in result.observations if o.service == "whatsapp" and o.asn == asn]


def _hourly(ooni) -> list[tuple[str, set[str]]]:
    return [
        (r.query["probe_cc"], set(r.query["probe_asn"].split(",")))
        for r in ooni.requests
        if r.query.get("axis_x") == "measurement_start_day"
    ]


def _discoveries(ooni) -> int:
    return sum(r.query.get("axis_x") == "probe_cc" for r in ooni.requests)


def test_a_network_one_watch_lists_carries_no_other_countrys_ooni_tests(batch):
    """65003 is in the UZ watch only, but TJ probes measure it and see WhatsApp blocked: batched with TJ, UZ must
    see only its own tests of it (per network and pooled), as it does alone; the networks measured in one
    country only still share requests across UZ, TJ and KG."""
    watches, ooni = batch
    src = make_source("ooni", watches[0], config=_config(ooni.url, cache=False))
    alone = [asyncio.run(src.collect(w, T0, T1)) for w in watches]
    asked_alone = len(ooni.requests)
    ooni.requests.clear()
    together = asyncio.run(src.collect_many([(w, T0, T1) for w in watches]))
    hourly = _hourly(ooni)
    assert ooni.contract_problems() == []
    uz = together[0]
    assert _whatsapp(uz, ROAMING) and all(o.value == 0.0 and o.count in (9, 10) for o in _whatsapp(uz, ROAMING))
    assert _whatsapp(uz, None) and all(o.value == 0.0 for o in _whatsapp(uz, None))  # UZ's pooled series
    for a, b in zip(alone, together):
        assert _seen(a) == _seen(b) and a.gaps == b.gaps == []
    assert {cc for cc, asns in hourly if f"AS{ROAMING}" in asns} == {"UZ"}
    assert all(asns == {f"AS{ROAMING}"} for cc, asns in hourly if cc == "UZ")  # only it is asked with UZ alone
    others = {f"AS{a}" for a in (65000, 65001, 65002, 65100, 65101, 65102, 65200, 65201)}
    assert {cc for cc, asns in hourly if asns & others} == {"KG,TJ,UZ"}
    assert all(asns == others for cc, asns in hourly if cc == "KG,TJ,UZ")
    # alone: 11 requests a watch (10 services, periscope's 2 domains); batched: 11 shared, 11 for 65003 with UZ
    # alone, and the one discovery
    assert (asked_alone, len(hourly), _discoveries(ooni)) == (33, 22, 1)


def test_where_networks_are_measured_is_asked_once_a_day(batch, tmp_path):
    watches, ooni = batch
    discovered = []
    day = timedelta(days=1)
    for start in (T0, T1, T0 + day, T0 + 5 * day):  # two ticks on one day, the next day, four days later
        src = make_source("ooni", watches[0], config=_config(ooni.url))  # a fresh source: what is kept is on disk
        results = asyncio.run(src.collect_many([(w, start, start + timedelta(hours=3)) for w in watches]))
        uz = results[0]
        assert _whatsapp(uz, ROAMING) and all(o.value == 0.0 for o in _whatsapp(uz, ROAMING))
        discovered.append(_discoveries(ooni))
    assert discovered == [1, 1, 2, 3]
    kept = sorted(p.name[:16] for p in (tmp_path / "cache" / "ooni").glob("homes-*.json"))
    assert kept == ["homes-2019-06-14"]  # older days' answers are dropped


@pytest.mark.parametrize("fault", ["500", "wrong_shape", "hang"])
def test_when_oonis_countries_cannot_be_had_every_country_is_asked_alone_and_told(batch, fault):
    watches, ooni = batch
    ooni.hang_seconds = 3.0  # past the client's 2 s timeout
    ooni.fail(fault, query={"axis_x": "probe_cc"})
    src = make_source("ooni", watches[0], config=_config(ooni.url, cache=False))
    results = asyncio.run(src.collect_many([(w, T0, T1) for w in watches]))
    assert {cc for cc, _ in _hourly(ooni)} == {"UZ", "TJ", "KG"}  # never two countries in one request
    uz = results[0]
    assert _whatsapp(uz, ROAMING) and all(o.value == 0.0 for o in _whatsapp(uz, ROAMING))
    for w, r in zip(watches, results):
        assert r.gaps == [] and r.observations  # the data is still collected
        told = [n for n in r.notices if "each country asked alone" in n.message]
        assert len(told) == 1 and told[0].level == NoticeLevel.info and told[0].watch == w.name

    ooni.clear()  # a failure is not kept: the next tick asks again, and batches
    ooni.requests.clear()
    asyncio.run(src.collect_many([(w, T0, T1) for w in watches]))
    assert _discoveries(ooni) == 1 and "KG,TJ,UZ" in {cc for cc, _ in _hourly(ooni)}
