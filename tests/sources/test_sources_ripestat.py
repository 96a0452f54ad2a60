"""RIPEstat client against the fake: cached country resources and routing visibility."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest
from tests.fakes.observatories import RipestatFake, Sleeps, fast_config

from pollwatch.sources import RipestatSource

T0 = datetime(2019, 6, 9, 0, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(hours=2)


@pytest.fixture
def ripe():
    with RipestatFake() as fake:
        fake.resources["KZ"] = {
            "asn": ["9198", "35168", "29355", "21299"],
            "ipv4": ["2.72.0.0/13", "5.34.0.0/17"],
            "ipv6": ["2a00:1b60::/32"],
        }
        yield fake


def source(fake, **options):
    return RipestatSource(fast_config(fake.url, options=options), sleep=Sleeps())


def test_visibility_becomes_observations(ripe, kz_watch):
    ripe.drops.append((T0 + timedelta(hours=1), T0 + timedelta(hours=1, minutes=30), 0.2))
    res = asyncio.run(source(ripe).collect(kz_watch, T0, T1))
    vis = {o.time: o.value for o in res.observations if o.signal == "ripe_visibility"}
    asns = {o.time: o.value for o in res.observations if o.signal == "ripe_routed_asns"}
    assert len(vis) == len(asns) == 24 and min(vis) == T0
    assert vis[T0] == 1000 and vis[T0 + timedelta(hours=1, minutes=10)] == 200 and asns[T0 + timedelta(hours=1)] == 24
    assert all(o.country == "KZ" and o.region is None and o.provenance for o in res.observations)
    assert res.gaps == []


def test_resource_list_is_cached_with_its_query_time(ripe, kz_watch, tmp_path):
    src = source(ripe, cache_dir=str(tmp_path))
    asyncio.run(src.collect(kz_watch, T0, T1))
    assert src.resources is not None and src.resources.asns == [9198, 21299, 29355, 35168]
    assert src.resources.query_time == datetime(2019, 6, 9, tzinfo=timezone.utc)
    assert src.resources.ipv4 == ["2.72.0.0/13", "5.34.0.0/17"]
    cached = json.loads((tmp_path / "country-resource-list-KZ.json").read_text())
    assert cached["query_time"].startswith("2019-06-09T00:00:00")
    asyncio.run(source(ripe, cache_dir=str(tmp_path)).collect(kz_watch, T0, T1))
    assert len(ripe.paths("/data/country-resource-list")) == 1  # second collect used the cache
    asyncio.run(source(ripe, cache_dir=str(tmp_path), resource_list_ttl_hours=0).collect(kz_watch, T0, T1))
    assert len(ripe.paths("/data/country-resource-list")) == 2  # expired: fetched again


def test_providers_missing_from_the_country_list_are_noticed(ripe, kz_watch, tmp_path):
    res = asyncio.run(source(ripe, cache_dir=str(tmp_path)).collect(kz_watch, T0, T1))
    assert any("AS48503 (Tele2 Kazakhstan)" in n.message and n.level == "info" for n in res.notices)


def test_resolution_follows_the_range(ripe, kz_watch, tmp_path):
    asyncio.run(source(ripe, cache_dir=str(tmp_path)).collect(kz_watch, T0, T0 + timedelta(days=3)))
    assert [r.query["resolution"] for r in ripe.requests if "stats" in r.path] == ["1h"]
