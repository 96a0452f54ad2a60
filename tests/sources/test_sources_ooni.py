"""OONI client against the fake aggregation API: rates with counts, no-data hours, domains, windows."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from tests.fakes.observatories import OoniFake, Sleeps, fast_config

from pollwatch.sources import OoniSource

T0 = datetime(2019, 6, 9, 0, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(hours=6)


@pytest.fixture
def ooni():
    with OoniFake() as fake:
        yield fake


def collect(fake, watch, start=T0, end=T1, **options):
    src = OoniSource(fast_config(fake.url, options=options), sleep=Sleeps())
    return asyncio.run(src.collect(watch, start, end))


def test_failure_rates_per_service_asn_and_hour_keep_their_counts(ooni, kz_watch):
    ooni.block("whatsapp", T0 + timedelta(hours=2), T0 + timedelta(hours=4), share=0.8, asn=9198)
    res = collect(ooni, kz_watch)
    assert res.gaps == []
    services = {s.name for s in kz_watch.services + kz_watch.circumvention}
    assert {o.service for o in res.observations} == services
    # per network, and the country's tests of each service pooled (asn None)
    assert len(res.observations) == len(services) * (len(kz_watch.providers) + 1) * 6
    pooled = {o.time: o for o in res.observations if o.service == "whatsapp" and o.asn is None}
    # 8 of Kazakhtelecom's 10 tests fail, the other four networks' 40 tests mostly pass; counts are completed tests
    # (the fake's odd run that could not complete is neither a pass nor a block)
    two = T0 + timedelta(hours=2)
    completed = sum(
        c["measurement_count"] - c["failure_count"]
        for c in (ooni.counts("whatsapp", None, p.asn, two) for p in kz_watch.providers)
    )
    assert 45 <= completed < 50 and pooled[two].count == completed
    assert pooled[two].value == pytest.approx(8 / completed, abs=1e-6)
    wa = {o.time: o for o in res.observations if o.service == "whatsapp" and o.asn == 9198}
    assert wa[T0 + timedelta(hours=2)].value == pytest.approx(0.8) and wa[T0 + timedelta(hours=2)].count == 10
    assert wa[T0 + timedelta(hours=4)].value <= 0.1
    other = [o for o in res.observations if o.service == "whatsapp" and o.asn == 35168]
    assert all(o.value == 0.0 and o.count in (9, 10) for o in other)
    assert all(o.signal == "service_failure_rate" and o.source == "ooni" for o in res.observations)
    assert all(o.provenance and "/api/v1/aggregation?" in o.provenance.request for o in res.observations)


def test_hours_without_measurements_are_no_data_never_a_zero_rate(ooni, kz_watch):
    ooni.silent.add(29355)
    res = collect(ooni, kz_watch)
    kcell = [o for o in res.observations if o.asn == 29355]
    assert kcell and all(o.value is None and o.count == 0 for o in kcell)
    assert res.gaps == []


def test_one_request_per_test_covers_all_networks(ooni, kz_watch):
    collect(ooni, kz_watch)
    by_test = Counter(r.query["test_name"] for r in ooni.requests)
    # periscope has two domains, instagram/youtube/twitter one each: 5 web_connectivity requests
    assert by_test["web_connectivity"] == 5 and by_test["whatsapp"] == 1 and by_test["tor"] == 1
    r = next(r for r in ooni.requests if r.query["test_name"] == "whatsapp")
    assert r.query["probe_asn"] == "AS9198,AS35168,AS29355,AS21299,AS48503"
    assert (
        r.query["time_grain"] == "hour"
        and r.query["axis_x"] == "measurement_start_day"
        and r.query["axis_y"] == "probe_asn"
    )
    assert r.query["since"] == "2019-06-09" and r.query["until"] == "2019-06-10" and "domain" not in r.query


def test_web_connectivity_is_asked_per_domain_and_summed_per_service(ooni, kz_watch):
    ooni.block("web_connectivity", T0, T1, share=1.0, domain="periscope.tv")
    res = collect(ooni, kz_watch)
    domains = sorted(r.query["domain"] for r in ooni.requests if r.query["test_name"] == "web_connectivity")
    assert domains == ["periscope.tv", "pscp.tv", "twitter.com", "www.instagram.com", "www.youtube.com"]
    p = [o for o in res.observations if o.service == "periscope" and o.asn is not None]
    assert all(o.count in (19, 20) for o in p)  # two domains x 10 measurements, less a run that could not complete
    assert all(0.5 <= o.value <= 0.55 for o in p)  # one domain fully blocked, the other not


def test_ranges_over_a_week_are_split_into_weekly_windows(ooni, kz_watch):
    w = kz_watch.model_copy(update={"services": kz_watch.services[1:2], "circumvention": []})
    res = collect(ooni, w, T0, T0 + timedelta(days=9))
    windows = sorted((r.query["since"], r.query["until"]) for r in ooni.requests)
    assert windows == [("2019-06-09", "2019-06-16"), ("2019-06-16", "2019-06-18")]
    hours = {o.time for o in res.observations}
    assert len(hours) == 9 * 24


def test_failed_runs_are_not_blocking(ooni, kz_watch):
    """OONI's failure_count counts runs the probe could not complete: the rate is anomalies over completed tests."""
    ooni.failing_runs("whatsapp", T0, T1, share=0.3)  # 3 of 10 runs fail every hour, nothing is blocked
    res = collect(ooni, kz_watch)
    wa = [o for o in res.observations if o.service == "whatsapp" and o.asn is not None]
    assert wa and all(o.value == 0.0 and o.count == 7 for o in wa)
    ooni.block("whatsapp", T0, T1, share=1.0)
    res = collect(ooni, kz_watch, cache=False)  # the same final hours, other data: not from the cache
    wa = [o for o in res.observations if o.service == "whatsapp" and o.asn is not None]
    assert all(o.value == 1.0 and o.count == 7 for o in wa)  # every completed test saw interference


def test_an_hour_where_most_runs_failed_is_a_gap_and_a_notice_not_a_block(ooni, kz_watch):
    ooni.failing_runs("whatsapp", T0 + timedelta(hours=1), T0 + timedelta(hours=2), share=0.8, asn=9198)
    res = collect(ooni, kz_watch)
    hour = next(
        o for o in res.observations if o.service == "whatsapp" and o.asn == 9198 and o.time == T0 + timedelta(hours=1)
    )
    assert hour.value is None and hour.count == 0
    gap = [g for g in res.gaps if g.entity == "KZ/asn=9198/service=whatsapp"]
    assert len(gap) == 1 and gap[0].start == T0 + timedelta(hours=1) and gap[0].end == T0 + timedelta(hours=2)
    assert "8 of 10" in gap[0].reason
    notice = [n for n in res.notices if "data quality" in n.message]
    assert len(notice) == 1 and "AS9198" in notice[0].message and "not a block" in notice[0].message
    others = [
        o for o in res.observations if o.service == "whatsapp" and o.asn == 9198 and o.time != T0 + timedelta(hours=1)
    ]
    assert others and all(o.value is not None for o in others)


def test_only_complete_hours_are_emitted(ooni, kz_watch):
    # a 5-minute tick at 01:05 re-reads 00:55-01:05: the 00:00 hour is complete, 01:00 is still filling up
    res = collect(ooni, kz_watch, T0 + timedelta(minutes=55), T0 + timedelta(hours=1, minutes=5))
    assert {o.time for o in res.observations} == {T0}
    assert collect(ooni, kz_watch, T0 + timedelta(minutes=35), T0 + timedelta(minutes=50)).observations == []
    res = collect(ooni, kz_watch, T0 + timedelta(minutes=35), T0 + timedelta(minutes=50), partial_hours=True)
    assert {o.time for o in res.observations} == {T0}


def test_a_final_hour_is_asked_once_then_read_from_the_cache(ooni, kz_watch):
    first = collect(ooni, kz_watch)
    keys = len(ooni.requests)
    assert keys == 11  # one per test and domain
    again = collect(ooni, kz_watch)  # a later tick re-reading the same hours (another process: the cache is on disk)
    assert len(ooni.requests) == keys and again.requests == 0
    pick = lambda res: sorted((o.time, o.asn or 0, o.service, o.value, o.count) for o in res.observations)  # noqa: E731
    assert pick(again) == pick(first)
    assert all(o.provenance and "/api/v1/aggregation?" in o.provenance.request for o in again.observations)
    # the next hour is asked once (its day is asked again, the hours before it are not re-read)
    collect(ooni, kz_watch, T0 + timedelta(hours=5), T1 + timedelta(hours=1))
    collect(ooni, kz_watch, T0 + timedelta(hours=5), T1 + timedelta(hours=1, minutes=30))
    assert len(ooni.requests) == 2 * keys


def test_a_live_tick_leaves_a_settling_hour_for_the_tick_that_finds_it_final(ooni, kz_watch, monkeypatch):
    import pollwatch.sources.ooni as mod

    settle = kz_watch.signals["service_failure_rate"].lag - timedelta(hours=1)
    assert settle == timedelta(minutes=20)  # the template judges an hour 20 min after it ends
    for minute in (5, 10, 15):  # the hour 00:00 ended, late uploads still arriving: nothing to ask
        now = T0 + timedelta(hours=1, minutes=minute)
        monkeypatch.setattr(mod, "now_utc", lambda now=now: now)
        res = collect(ooni, kz_watch, T0, now)
        assert res.observations == [] and res.gaps == []
    assert ooni.requests == []
    for minute in (20, 25, 30):  # final at 01:20: asked once, then read from the cache
        now = T0 + timedelta(hours=1, minutes=minute)
        monkeypatch.setattr(mod, "now_utc", lambda now=now: now)
        res = collect(ooni, kz_watch, T0 + timedelta(minutes=minute - 20), now)
        assert {o.time for o in res.observations} == {T0}
    assert len(ooni.requests) == 11


def test_ooni_quota_429_is_waited_out_as_retry_after_says(ooni, kz_watch):
    ooni.retry_after = "7"
    ooni.fail("429", times=1)
    src = OoniSource(fast_config(ooni.url, retries=2, max_backoff=30), sleep=(sleeps := Sleeps()))
    res = asyncio.run(src.collect(kz_watch, T0, T1))
    assert res.gaps == [] and sleeps.delays and max(sleeps.delays) >= 7
