"""Contract: the requests each client makes, checked against the route table its fake takes from the service's code.

Each fake's `routes` name the upstream file they follow (InetIntel/ioda-api's controllers, ooni/backend's
aggregation router, cloudflare/api-schemas, RIPEstat's data API documentation). A client asking a path
the service does not route, or a parameter the route does not read, fails here, not on election morning.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from tests.fakes.observatories import (
    IodaFake,
    OoniFake,
    RadarFake,
    RipestatFake,
    Sleeps,
    fast_config,
    ioda_alert,
    ioda_event,
    radar_annotation,
)

from pollwatch import __version__
from pollwatch.sources import make_source

T0 = datetime(2019, 6, 9, 0, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(hours=3)
TOKEN = "radar-contract-token"


def run(name, fake, watch, start=T0, end=T1, **kw):
    src = make_source(name, watch, config=fast_config(fake.url), sleep=Sleeps(), **kw)
    return asyncio.run(src.collect(watch, start, end))


def used_routes(fake):
    return sorted({fake.route_of(r.path)[0].pattern for r in fake.requests if fake.route_of(r.path)})


def test_every_fake_names_the_upstream_code_of_each_route():
    for fake in (IodaFake(), OoniFake(), RipestatFake(), RadarFake()):
        assert fake.routes and all(r.upstream for r in fake.routes)
        assert type(fake).__doc__ and any(r.upstream.split()[0] in type(fake).__doc__ for r in fake.routes)


def test_ioda_requests_match_iodas_routes(kz_watch):
    with IodaFake() as ioda:
        ioda.alerts.append(ioda_alert("country", "KZ", T0 + timedelta(minutes=30)))
        ioda.events.append(ioda_event("asn", "9198", T0, T1))
        res = run("ioda", ioda, kz_watch)
        assert res.failed_requests == 0 and len(res.corroborations) == 2
        assert ioda.contract_problems() == []
        assert used_routes(ioda) == [
            "/entities/query",
            "/outages/alerts",
            "/outages/events",
            "/signals/raw/{entityType}/{entityCode}",
        ]
        # what the client asked before this issue is not a route of IODA's
        ioda.requests.clear()
        import httpx

        httpx.get(ioda.url + "/outages/alerts/country/KZ", params={"from": 1, "until": 2})
        assert ioda.contract_problems() == ["/outages/alerts/country/KZ: no such route"]


def test_ooni_requests_match_the_aggregation_router(kz_watch):
    with OoniFake() as ooni:
        res = run("ooni", ooni, kz_watch)
        assert res.failed_requests == 0 and res.observations
        assert ooni.contract_problems() == [] and used_routes(ooni) == ["/api/v1/aggregation"]
        assert all(r.query["time_grain"] == "hour" and r.query["probe_asn"].startswith("AS") for r in ooni.requests)


def test_ripestat_requests_carry_sourceapp_on_every_call(kz_watch):
    with RipestatFake() as ripe:
        res = run("ripestat", ripe, kz_watch)
        assert res.failed_requests == 0
        assert ripe.contract_problems() == [] and len(used_routes(ripe)) == 2
        assert ripe.requests and all(r.query.get("sourceapp") == "pollwatch" for r in ripe.requests)


def test_radar_requests_match_the_api_schema(kz_watch):
    with RadarFake(token=TOKEN) as radar:
        radar.annotations.append(radar_annotation("KZ", T0, None))
        res = run("radar", radar, kz_watch, token=TOKEN)
        assert res.failed_requests == 0 and res.corroborations
        assert radar.contract_problems() == [] and used_routes(radar) == [
            "/radar/annotations/outages",
            "/radar/traffic_anomalies",
        ]


@pytest.mark.parametrize("fake_cls", [IodaFake, OoniFake, RipestatFake])
def test_the_user_agent_names_pollwatch_its_version_and_the_contact_url(fake_cls, kz_watch, monkeypatch):
    monkeypatch.setenv("POLLWATCH_CONTACT_URL", "https://example.org/pollwatch-ops")
    name = {IodaFake: "ioda", OoniFake: "ooni", RipestatFake: "ripestat"}[fake_cls]
    with fake_cls() as fake:
        run(name, fake, kz_watch)
        agents = {r.headers.get("User-Agent") for r in fake.requests}
    assert len(agents) == 1
    (ua,) = agents
    assert ua.startswith(f"pollwatch/{__version__} (+https://example.org/pollwatch-ops;")
