"""IODA client against the fake IODA: series to observations, batching, chunking, gaps, corroboration."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from tests.fakes.observatories import IodaFake, Sleeps, fast_config, ioda_alert, ioda_event

from pollwatch.models import NoticeLevel
from pollwatch.sources import IodaSource, make_source

T0 = datetime(2019, 6, 9, 0, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(hours=3)


@pytest.fixture
def ioda():
    with IodaFake() as fake:
        yield fake


def source(fake: IodaFake, **options) -> IodaSource:
    src = IodaSource(fast_config(fake.url, options=options), sleep=Sleeps())
    return src


def collect(src, watch, start=T0, end=T1):
    return asyncio.run(src.collect(watch, start, end))


def test_series_become_timestamped_observations(ioda, kz_watch):
    res = collect(source(ioda), kz_watch)
    assert res.gaps == [] and [n for n in res.notices if n.level != NoticeLevel.info] == []
    by_signal = Counter(o.signal for o in res.observations)
    entities = 1 + len(kz_watch.regions) + len(kz_watch.providers)
    # 3 hours: bgp and telescope every 300 s, active probing every 600 s
    assert by_signal == {"bgp": 36 * entities, "telescope": 36 * entities, "active_probing": 18 * entities}
    bgp_kz = sorted((o for o in res.observations if o.signal == "bgp" and o.entity_key == "KZ"), key=lambda o: o.time)
    assert [o.time for o in bgp_kz[:3]] == [T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)]
    assert bgp_kz[-1].time == T1 - timedelta(minutes=5)
    assert all(o.value == ioda.value("country", "KZ", "bgp", int(o.time.timestamp())) for o in bgp_kz)
    asn = [o for o in res.observations if o.asn == 9198 and o.signal == "active_probing"]
    assert len(asn) == 18 and all(o.region is None for o in asn)
    for o in res.observations:
        p = o.provenance
        assert p and p.request.startswith(ioda.url + "/signals/raw/") and len(p.payload_hash) == 64 and p.fetched_at


def test_nulls_are_no_data_observations(ioda, kz_watch):
    t = int((T0 + timedelta(minutes=30)).timestamp())
    ioda.nulls.add(("KZ", "bgp", t))
    res = collect(source(ioda), kz_watch)
    at = [o for o in res.observations if o.entity_key == "KZ" and o.signal == "bgp" and int(o.time.timestamp()) == t]
    assert len(at) == 1 and at[0].value is None
    assert res.gaps == []


def test_drop_in_the_data_comes_through(ioda, kz_watch):
    ioda.drop("*", T0 + timedelta(hours=1), T0 + timedelta(hours=2), 0.05)
    res = collect(source(ioda), kz_watch)
    kz = {o.time: o.value for o in res.observations if o.entity_key == "KZ" and o.signal == "bgp"}
    assert kz[T0 + timedelta(minutes=90)] < 0.1 * kz[T0]


def test_entities_are_batched_per_request(ioda, kz_watch):
    collect(source(ioda, entities_per_request=2, corroboration=False), kz_watch)
    asn_paths = ioda.paths("/signals/raw/asn/")
    # 5 ASNs in batches of 2 -> 3 requests per datasource
    assert len(asn_paths) == 9
    assert "/signals/raw/asn/9198,35168" in asn_paths
    assert len(ioda.paths("/signals/raw/country/")) == 3


def test_datasources_follow_the_playbook_or_options(ioda, kz_watch):
    w = kz_watch.model_copy(update={"signals": {k: v for k, v in kz_watch.signals.items() if k != "telescope"}})
    collect(source(ioda, corroboration=False), w)
    assert {r.query["datasource"] for r in ioda.requests if "/signals/" in r.path} == {"bgp", "ping-slash24"}
    ioda.requests.clear()
    res = collect(source(ioda, corroboration=False, datasources=["gtr"]), kz_watch)
    assert {r.query["datasource"] for r in ioda.requests if "/signals/" in r.path} == {"gtr"}
    assert {o.signal for o in res.observations} == {"gtr"}


def test_region_codes_map_to_iodas_numeric_codes(ioda, kz_watch):
    res = collect(source(ioda, region_codes={"KZ-ALA": "1522"}, corroboration=False), kz_watch)
    assert any(p.startswith("/signals/raw/region/1522,") for p in ioda.paths())
    ala = [o for o in res.observations if o.region == "KZ-ALA"]
    assert ala and ala[0].value == ioda.value(
        "region",
        "1522",
        ala[0].signal
        if ala[0].signal == "bgp"
        else {"active_probing": "ping-slash24", "telescope": "merit-nt"}[ala[0].signal],
        int(ala[0].time.timestamp()),
    )


def test_long_ranges_are_split_under_100_days(ioda, kz_watch):
    w = kz_watch.model_copy(update={"regions": [], "providers": []})
    start, end = T0 - timedelta(days=150), T0
    # 150 days of 10-minute points: a timeout that leaves room for a loaded machine (the subject is the split)
    src = IodaSource(
        fast_config(
            ioda.url, timeout=timedelta(seconds=20), options={"datasources": ["ping-slash24"], "corroboration": False}
        )
    )
    res = collect(src, w, start, end)
    spans = [int(r.query["until"]) - int(r.query["from"]) for r in ioda.requests]
    assert len(spans) == 2 and all(s < 100 * 86400 for s in spans)
    times = [o.time for o in res.observations]
    assert len(times) == len(set(times)) == 150 * 144
    assert min(times) == start and max(times) == end - timedelta(minutes=10)
    assert res.gaps == []


def test_an_entity_iodа_does_not_know_is_a_gap_for_that_entity_only(ioda, kz_watch):
    ioda.missing.add("48503")
    res = collect(source(ioda, corroboration=False), kz_watch)
    assert {(g.entity, g.signal) for g in res.gaps} == {
        ("KZ/asn=48503", s) for s in ("bgp", "active_probing", "telescope")
    }
    assert all(g.start == T0 and g.end == T1 for g in res.gaps)
    assert not any(o.asn == 48503 for o in res.observations)
    assert any(o.asn == 9198 for o in res.observations)


def test_alerts_and_events_become_corroborations(ioda, kz_watch):
    ioda.alerts.append(
        ioda_alert("country", "KZ", T0 + timedelta(minutes=40), level="critical", value=12, history=3100)
    )
    ioda.alerts.append(ioda_alert("asn", "9198", T0 + timedelta(minutes=45), ds="ping-slash24"))
    ioda.events.append(ioda_event("country", "KZ", T0 + timedelta(minutes=40), T0 + timedelta(hours=2), score=98765))
    res = collect(source(ioda), kz_watch)
    kinds = Counter(c.kind for c in res.corroborations)
    assert kinds == {"ioda_alert": 2, "ioda_event": 1}
    alert = next(c for c in res.corroborations if c.kind == "ioda_alert" and c.entity == "KZ")
    assert alert.level == "critical" and alert.value == 12 and alert.expected == 3100 and alert.datasource == "bgp"
    asn_alert = next(c for c in res.corroborations if c.entity == "KZ/asn=9198")
    assert asn_alert.entity_type == "asn" and asn_alert.datasource == "ping-slash24"
    event = next(c for c in res.corroborations if c.kind == "ioda_event")
    assert event.start == T0 + timedelta(minutes=40) and event.end == T0 + timedelta(hours=2) and event.score == 98765
    assert event.provenance and event.provenance.request.startswith(ioda.url + "/outages/events?")
    # the entity goes in query parameters (OutagesController.php routes /outages/alerts and /outages/events only)
    outages = [r for r in ioda.requests if r.path.startswith("/outages/")]
    assert {r.path for r in outages} == {"/outages/alerts", "/outages/events"} and len(outages) == 6
    assert {(r.query.get("entityType"), r.query.get("entityCode"), r.query.get("relatedTo")) for r in outages} == {
        ("country", "KZ", None),
        ("region", None, "country/KZ"),
        ("asn", None, "country/KZ"),
    }
    assert not any(n.level >= NoticeLevel.warning for n in res.notices)  # no 404 warnings every tick


def test_outage_records_of_regions_and_networks_come_through_relatedto(ioda, kz_watch):
    ioda.alerts.append(ioda_alert("region", "4101", T0 + timedelta(minutes=20)))  # Almaty City
    ioda.events.append(ioda_event("asn", "29355", T0 + timedelta(minutes=30), T0 + timedelta(hours=1)))
    ioda.alerts.append(ioda_alert("asn", "3320", T0 + timedelta(minutes=20), country="DE"))  # another country's network
    res = collect(source(ioda), kz_watch)
    assert sorted(c.entity for c in res.corroborations) == ["KZ/asn=29355", "KZ/region=KZ-ALA"]


def test_outage_records_are_read_page_by_page(ioda, kz_watch):
    for i in range(7):
        ioda.alerts.append(ioda_alert("country", "KZ", T0 + timedelta(minutes=i)))
    res = collect(source(ioda, records_per_page=3), kz_watch)
    assert len([c for c in res.corroborations if c.kind == "ioda_alert"]) == 7
    pages = [
        r.query["page"] for r in ioda.requests if r.path == "/outages/alerts" and r.query.get("entityType") == "country"
    ]
    assert pages == ["0", "1", "2"]
    res = collect(source(ioda, records_per_page=3, record_pages=2), kz_watch)
    assert len([c for c in res.corroborations if c.kind == "ioda_alert"]) == 6
    assert any("more than 6 outage alerts" in n.message for n in res.notices)


def test_the_entity_in_the_path_is_no_route_at_iodas(ioda):
    """The paths pollwatch used to ask (the entity in the path) answer 404, as IODA's router does."""
    import httpx

    r = httpx.get(ioda.url + "/outages/alerts/country/KZ", params={"from": 0, "until": 10})
    assert r.status_code == 404 and "No route" in r.json()["error"]
    r = httpx.get(ioda.url + "/outages/events", params={"until": 10})
    assert r.status_code == 400 and r.json()["error"] == "'from' timestamp must be set"


def test_gtr_is_asked_for_the_country_only(ioda, kz_watch):
    res = collect(source(ioda, corroboration=False, datasources=["gtr", "bgp"]), kz_watch)
    gtr = [r.path for r in ioda.requests if r.query.get("datasource") == "gtr"]
    assert gtr == ["/signals/raw/country/KZ"]
    assert not any(g.signal == "gtr" for g in res.gaps)
    assert {o.entity_key for o in res.observations if o.signal == "gtr"} == {"KZ"}


def test_make_source_takes_the_playbook_config_and_a_base_url_override(ioda, kz_watch):
    src = make_source("ioda", kz_watch, base_url=ioda.url)
    assert src.base_url == ioda.url
    assert make_source("ioda", kz_watch).base_url == "https://api.ioda.inetintel.cc.gatech.edu/v2"
    with pytest.raises(ValueError, match="unknown source"):
        make_source("nope", kz_watch)


def _region_code(fake: IodaFake, name: str) -> str:
    return next(r["code"] for r in fake.regions["KZ"] if r["name"] == name)


def test_regions_are_found_by_alias_then_name_in_iodas_entity_list(ioda, kz_watch):
    res = collect(source(ioda, corroboration=False), kz_watch)
    region_paths = [p for p in ioda.paths() if p.startswith("/signals/raw/region/")]
    # KZ-ALA is the city: its alias "Almaty City" wins over the province that is also named "Almaty"
    wanted = {
        _region_code(ioda, n) for n in ("Almaty City", "Astana", "Qaraghandy", "East Kazakhstan", "South Kazakhstan")
    }
    assert region_paths and all(set(p.rsplit("/", 1)[1].split(",")) == wanted for p in region_paths)
    city = [o for o in res.observations if o.region == "KZ-ALA" and o.signal == "bgp"]
    assert city and city[0].value == ioda.value(
        "region", _region_code(ioda, "Almaty City"), "bgp", int(city[0].time.timestamp())
    )
    assert {o.region for o in res.observations if o.region} == {r.code for r in kz_watch.regions}
    collect(source(ioda, corroboration=False), kz_watch)  # the list is looked up once a day, not every tick
    assert sum(p == "/entities/query" for p in ioda.paths()) == 1


def test_a_region_iodа_does_not_know_is_a_gap_and_one_notice_naming_iodas_regions(ioda, kz_watch):
    ioda.regions["KZ"] = [r for r in ioda.regions["KZ"] if r["name"] != "South Kazakhstan"]
    res = collect(source(ioda, corroboration=False), kz_watch)
    assert {(g.entity, g.signal) for g in res.gaps} == {
        ("KZ/region=KZ-YUZ", s) for s in ("bgp", "active_probing", "telescope")
    }
    assert not any(o.region == "KZ-YUZ" for o in res.observations) and any(
        o.region == "KZ-VOS" for o in res.observations
    )
    told = [n for n in res.notices if "KZ-YUZ (Turkistan)" in n.message]
    assert len(told) == 1 and "region_codes" in told[0].message and "eastkazakhstan" in told[0].message


def test_when_the_region_list_is_unavailable_codes_go_as_they_are(ioda, kz_watch):
    ioda.fail("500", path="/entities/query")
    res = collect(source(ioda, corroboration=False), kz_watch)
    assert any(p.startswith("/signals/raw/region/KZ-ALA,") for p in ioda.paths())
    assert any("entities" in n.message for n in res.notices) and {o.region for o in res.observations if o.region} == {
        r.code for r in kz_watch.regions
    }


def test_the_region_list_is_asked_once_a_day_across_processes(ioda, kz_watch):
    from pollwatch.sources import ioda as mod

    collect(source(ioda, corroboration=False), kz_watch)
    assert len(ioda.paths("/entities/query")) == 1
    mod._REGION_LISTS.clear()  # the next tick runs in a process of its own (serve): the list comes from disk
    res = collect(source(ioda, corroboration=False), kz_watch)
    assert len(ioda.paths("/entities/query")) == 1
    assert any(o.region == "KZ-ALA" for o in res.observations)
