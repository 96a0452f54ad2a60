"""Waits and sizes are bounded (issue #16): a dripping server, a slow source and a huge answer cannot hold a tick.

Real hostile servers on 127.0.0.1 (tests/fakes/observatories.py faults "drip", "hang", "huge",
"bomb") against the real HTTP layer, the real source clients and a real watch tick. What a limit
cuts off is a gap with a notice, never an exception and never an outage. The memory a 200 MB
answer costs is measured by bench/hostile_http.py, not here.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest

from pollwatch.models import NoticeLevel
from pollwatch.playbook import PlaybookError, SourceConfig, TickLimits, load_watch
from pollwatch.sources import make_source
from pollwatch.sources.http import FetchError, HttpClient
from tests.fakes.observatories import IodaFake, OoniFake, Sleeps, fast_config, observatories
from tests.fakes.watches import QUICK_SOURCE, kz_watch_yaml

T0 = datetime(2019, 6, 9, 6, 0, tzinfo=timezone.utc)
SIGNALS = "/signals/raw/country/KZ?from=1560052800&until=1560056400&datasource=bgp"


def _collect(name, fake, watch, tick_deadline=None, **cfg):
    src = make_source(name, watch, config=fast_config(fake.url, **cfg), sleep=Sleeps())
    began = time.monotonic()
    res = asyncio.run(src.collect(watch, T0 - timedelta(hours=1), T0, deadline=tick_deadline))
    return res, time.monotonic() - began


# --- one request ------------------------------------------------------------------------------------


async def test_a_dripping_server_is_cut_off_at_the_attempt_deadline():
    with IodaFake() as ioda:
        ioda.drip_interval = 0.1  # a byte every 0.1 s: httpx's read timeout (per byte) never fires
        ioda.fail("drip")
        began = time.monotonic()
        async with HttpClient(ioda.url, timeout=1.0, deadline=1.0, retries=0, rate_limit=0) as http:
            with pytest.raises(FetchError) as err:
                await http.get_json(SIGNALS)
        took = time.monotonic() - began
    assert err.value.kind == "timeout" and "no complete answer within the 1 s deadline" in str(err.value)
    assert took < 2.5, took  # the body alone would take minutes


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "until-close"])
async def test_a_huge_answer_is_refused_at_the_size_limit_without_retrying(length):
    with IodaFake() as ioda:
        ioda.huge_bytes, ioda.huge_length = 20 * 10**6, length
        ioda.fail("huge")
        async with HttpClient(ioda.url, max_bytes=2**20, retries=3, rate_limit=0, sleep=Sleeps()) as http:
            with pytest.raises(FetchError) as err:
                await http.get_json(SIGNALS)
            assert http.requests == 1  # the same answer would come again
    assert err.value.kind == "too_large" and "1.0 MiB" in str(err.value) and "max_response" in str(err.value)


async def test_a_gzip_bomb_is_measured_inflated():
    with IodaFake() as ioda:
        ioda.fail("bomb")  # ~100 kB on the wire, 50 MB inflated
        async with HttpClient(ioda.url, max_bytes=2**20, rate_limit=0) as http:
            with pytest.raises(FetchError) as err:
                await http.get_json(SIGNALS)
    assert err.value.kind == "too_large"


async def test_an_answer_within_the_limit_is_parsed():
    with IodaFake() as ioda:
        ioda.huge_bytes = 500_000
        ioda.fail("huge", times=1)
        async with HttpClient(ioda.url, max_bytes=2**20, rate_limit=0) as http:
            got = await http.get_json(SIGNALS)
    assert got.size <= 500_000 and len(got.payload["data"][0][0]["values"]) > 50_000


# --- a source ---------------------------------------------------------------------------------------


def test_an_oversized_answer_is_a_gap_with_a_notice(kz_watch):
    with IodaFake() as ioda:
        ioda.huge_bytes = 5 * 10**6
        ioda.fail("huge", path="/signals/raw/country")
        res, _ = _collect("ioda", ioda, kz_watch, max_response="1MiB", retries=0)
    country = [g for g in res.gaps if g.entity == "KZ"]
    assert country and all("size limit of 1.0 MiB" in g.reason for g in country)
    assert not [g for g in res.gaps if g.entity != "KZ"]  # the regions and networks still came in
    assert {o.region for o in res.observations if o.region} and {o.asn for o in res.observations if o.asn}
    notice = [n for n in res.notices if n.level != NoticeLevel.info]
    assert notice and "too_large" in notice[0].message


def test_size_limits_are_documented_defaults_and_configurable(tmp_path):
    assert make_source("radar").default_max_response < make_source("ooni").default_max_response == 32 * 2**20
    assert SourceConfig(max_response="16MB").max_response == 16 * 10**6
    watch = tmp_path / "w.yaml"
    watch.write_text(
        kz_watch_yaml("kz-sources-test", fast=True, sources={"ioda": {"retries": 0, "max_response": "lots"}})
    )
    with pytest.raises(PlaybookError) as err:
        load_watch(watch)
    assert "sources.ioda.max_response" in str(err.value) and "w.yaml:" in str(err.value)


def test_a_slow_source_stops_at_the_deadline_and_keeps_what_came(kz_watch):
    # the "30 s responses, three retries" at a tenth of the scale: 3 s per attempt, 3 retries
    with IodaFake() as ioda:
        ioda.hang_seconds = 30
        ioda.fail("hang", path="/signals/raw/asn")
        deadline = datetime.now(timezone.utc) + timedelta(seconds=4)
        res, took = _collect("ioda", ioda, kz_watch, deadline, timeout=timedelta(seconds=3), retries=3)
    assert took < 6, took  # without the deadline: 4 attempts x 3 s and the backoffs
    asns = {f"KZ/asn={p.asn}" for p in kz_watch.providers}
    late = [g for g in res.gaps if "tick's deadline" in g.reason]
    assert asns <= {g.entity for g in late}  # what did not come is a gap, named as the deadline's
    assert "KZ" not in {g.entity for g in late} and any(o.region is None and o.asn is None for o in res.observations)
    notice = next(n for n in res.notices if n.level != NoticeLevel.info)
    assert "deadline" in notice.message and res.requests > 0


def test_a_deadline_already_past_gaps_everything_at_once(kz_watch):
    with OoniFake() as ooni:
        res, took = _collect("ooni", ooni, kz_watch, datetime.now(timezone.utc) - timedelta(seconds=1))
    assert took < 1.0 and not [o for o in res.observations if o.value is not None]
    assert len({(g.entity, g.signal) for g in res.gaps}) == len(make_source("ooni", kz_watch).expected(kz_watch))


def test_the_tick_deadline_follows_the_cadence():
    limits = TickLimits()
    assert limits.for_cadence(timedelta(minutes=5)) == timedelta(minutes=2, seconds=30)
    assert limits.for_cadence(timedelta(days=1)) == timedelta(minutes=10)
    assert TickLimits(deadline=0.2, max_deadline="1h").for_cadence(timedelta(hours=1)) == timedelta(minutes=12)


# --- a real tick ----------------------------------------------------------------------------------


@pytest.mark.prefect
def test_a_tick_against_a_dripping_source_ends_at_its_deadline(prefect_harness, tmp_path, monkeypatch):
    from pollwatch.flows.watch_tick import watch_tick
    from pollwatch import store

    watch_file = tmp_path / "kz-drip.yaml"
    # IODA's attempts may take a minute each (the default): only the tick's deadline (3 s) can stop the drip
    sources = {"radar": {"enabled": False, **QUICK_SOURCE}, "ioda": {"retries": 0}, "ooni": QUICK_SOURCE}
    watch_file.write_text(
        kz_watch_yaml("kz-drip", fast=True, sources={**sources, "ripestat": QUICK_SOURCE}, tick={"max_deadline": "3s"})
    )
    with observatories() as obs:
        obs.ripestat.resources["KZ"] = {"asn": ["9198", "29355"], "ipv4": ["2.72.0.0/13"], "ipv6": []}
        obs.ioda.drip_interval = 0.5
        obs.ioda.fail("drip", path="/signals/raw/asn")
        began = time.monotonic()
        result = watch_tick(str(watch_file), T0, None, obs.base_urls())
        took = time.monotonic() - began
    assert result["skipped"] is False and result["sources"]["ioda"]["observations"] > 0
    with store.session_scope() as s:
        gaps = [g for g in store.list_gaps(s, "kz-drip") if "deadline" in g.reason]
        notices = [n for n in store.list_notices(s, "kz-drip") if n.source == "ioda"]
    assert {g.entity for g in gaps} == {"KZ/asn=9198", "KZ/asn=29355"} and all(
        "stopped after 3 s" in g.reason for g in gaps
    )
    assert notices and "deadline" in notices[0].message
    assert took < 55, took  # not the attempt's 60 s deadline (the drip itself would take minutes)


def test_interrupting_a_collect_returns_what_came_and_gaps_the_rest(kz_watch):
    from concurrent.futures import ThreadPoolExecutor

    from pollwatch.sources import interrupt_collections

    with IodaFake() as ioda:
        ioda.drip_interval = 0.5
        ioda.fail("drip", path="/signals/raw/asn")
        with ThreadPoolExecutor(1) as pool:  # as Prefect's task runner runs a collect
            future = pool.submit(_collect, "ioda", ioda, kz_watch, None, deadline=timedelta(minutes=10), retries=0)
            began = time.monotonic()
            while not ioda.paths("/signals/raw/asn") and time.monotonic() - began < 10:
                time.sleep(0.05)
            time.sleep(0.3)
            assert interrupt_collections("SIGTERM") == 1
            res, took = future.result(timeout=5)
    stopped = [g for g in res.gaps if "stopped" in g.reason and "SIGTERM" in g.reason]
    assert {g.entity for g in stopped} >= {f"KZ/asn={p.asn}" for p in kz_watch.providers}
    assert any(o.asn is None for o in res.observations) and took < 5
