"""Distribution through Prefect: a vantage's work pool runs the probe flow, the tick gathers its
observations; a vantage with no worker becomes gaps and an operator notice, never an outage."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from pollwatch.playbook import Service, SourceConfig, Vantage
from tests.fakes.probes import FakeDns, FakeWeb, make_pki

pytestmark = pytest.mark.usefixtures("prefect_harness")

TICK = datetime(2019, 6, 9, 5, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("pki"), ["svc.pollwatch.test"], ["wrong.example"])
    with (
        FakeDns({"svc.pollwatch.test": "127.0.0.1", "gone.pollwatch.test": "nxdomain"}) as dns_server,
        FakeWeb(pki) as servers,
    ):
        yield dns_server, servers, pki


def _watch(kz_watch, web, pools: dict[str, str]):
    dns_server, servers, pki = web
    port = servers.ports["ok"]
    services = [
        Service(
            name="whatsapp",
            urls=[f"https://svc.pollwatch.test:{port}/"],
            transfer_url=f"https://svc.pollwatch.test:{port}/object",
        ),
        Service(name="periscope", urls=[f"https://gone.pollwatch.test:{port}/"]),
    ]
    options = {
        "attempts": 2,
        "step_timeout": 10.0,
        "ca_file": str(pki["ca"]),
        "bogon_exempt": ["127.0.0.0/8"],
        "resolver": dns_server.address,
    }
    vantages = [Vantage(name=name, work_pool=pool, asn=9198, location="KZ-ALA") for name, pool in pools.items()]
    return kz_watch.model_copy(
        update={
            "services": services,
            "vantages": vantages,
            "sources": {**kz_watch.sources, "webprobe": SourceConfig(options=options)},
        }
    )


async def _create_pool(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=name, type="process"), overwrite=True)


async def test_a_vantage_without_a_worker_is_a_gap_and_a_notice(kz_watch, web):
    from prefect.client.orchestration import get_client

    from pollwatch.flows.probe import deploy_vantages
    from pollwatch.tasks.probe import probe_vantages

    pool = f"pw-silent-{uuid.uuid4().hex[:6]}"
    await _create_pool(pool)
    watch = _watch(kz_watch, web, {"almaty-silent": pool})
    await asyncio.to_thread(deploy_vantages, watch)
    out = await probe_vantages(watch, TICK, timeout=1.0, span=timedelta(minutes=5), poll_interval=0.2)
    assert out.silent == ["almaty-silent"] and out.answered == [] and out.observations == []
    assert {g.entity for g in out.gaps} == {
        "KZ/region=KZ-ALA/asn=9198/service=whatsapp",
        "KZ/region=KZ-ALA/asn=9198/service=periscope",
    }
    assert all(g.source == "webprobe" and g.end == TICK and "did not answer" in g.reason for g in out.gaps)
    [notice] = out.notices
    assert notice.source == "vantage" and "almaty-silent" in notice.message and "not an outage" in notice.message
    async with get_client() as client:  # the stale run is cancelled: a worker coming back later must not run it
        runs = await client.read_flow_runs()
    mine = [r for r in runs if r.name == "probe-almaty-silent-20190609T0500"]
    assert mine and all(r.state.is_cancelled() for r in mine)


async def test_a_vantage_with_no_deployment_is_reported_too(kz_watch, web):
    from pollwatch.tasks.probe import probe_vantages

    watch = _watch(kz_watch, web, {"never-deployed": "nowhere"})
    out = await probe_vantages(watch, TICK, timeout=1.0, span=timedelta(minutes=5))
    assert out.silent == ["never-deployed"] and "could not be started" in out.notices[0].message


async def test_the_probe_flow_measures_and_returns_observations(kz_watch, web):
    from pollwatch.flows.probe import probe_flow

    watch = _watch(kz_watch, web, {"almaty-1": "unused"})
    result = await probe_flow(watch.model_dump(mode="json"), "almaty-1", TICK)
    by = {(o["service"], o["signal"]): o for o in result["observations"]}
    assert (
        by[("whatsapp", "probe_success_rate")]["value"] == 1.0 and by[("whatsapp", "probe_success_rate")]["count"] == 4
    )
    assert by[("periscope", "probe_outage_dns_nxdomain")]["value"] == 2.0
    assert by[("whatsapp", "rtt_ms")]["value"] > 0 and by[("whatsapp", "rtt_ms")]["time"] == "2019-06-09T05:00:00Z"
    assert result["notices"] == []


@pytest.mark.slow
async def test_a_worker_on_the_vantage_pool_answers_the_tick(kz_watch, web):
    from prefect.workers.process import ProcessWorker

    from pollwatch.flows.probe import deploy_vantages
    from pollwatch.tasks.probe import probe_vantages

    pool = f"pw-live-{uuid.uuid4().hex[:6]}"
    await _create_pool(pool)
    watch = _watch(kz_watch, web, {"almaty-live": pool})
    await asyncio.to_thread(deploy_vantages, watch)
    async with ProcessWorker(work_pool_name=pool, prefetch_seconds=60) as worker:
        gathering = asyncio.create_task(
            probe_vantages(watch, TICK, timeout=90.0, span=timedelta(minutes=5), poll_interval=0.5)
        )
        while not gathering.done():
            await worker.get_and_submit_flow_runs()
            await asyncio.wait([gathering], timeout=1.0)
        out = gathering.result()
    assert out.answered == ["almaty-live"] and out.gaps == [] and out.notices == [], out.notices
    rates = {o.service: o.value for o in out.observations if o.signal == "probe_success_rate"}
    assert rates == {"whatsapp": 1.0, "periscope": 0.0}
    assert all(o.asn == 9198 and o.source == "webprobe" and o.time == TICK for o in out.observations)


def test_the_watch_tick_turns_an_unreachable_vantage_into_gaps_and_a_notice(kz_watch, tmp_path):
    import yaml

    from pollwatch.flows.watch_tick import watch_tick
    from pollwatch import store
    from tests.conftest import KZ_WATCH

    data = yaml.safe_load(KZ_WATCH.read_text())
    data["template"] = str(KZ_WATCH.parent.parent / "rapid-response.yaml")
    data["vantages"] = [{"name": "offline-1", "work_pool": "nowhere", "asn": 9198}]
    # the observatories stay off: a tick without an observations file would otherwise fetch from them
    data["sources"] = {
        "vantages": {"timeout": "2s"},
        **{name: {"enabled": False} for name in ("ioda", "ooni", "ripestat", "radar")},
    }
    path = tmp_path / "kz-with-vantage.yaml"
    path.write_text(yaml.safe_dump(data))
    out = watch_tick(str(path), TICK)
    assert out["skipped"] is False
    with store.session_scope() as s:
        notices = store.list_notices(s, kz_watch.name)
        gaps = store.list_gaps(s, kz_watch.name)
    assert [n.source for n in notices if "offline-1" in n.message] == ["vantage"]
    assert {g.entity for g in gaps if "offline-1" in g.reason} == {
        f"KZ/asn=9198/service={svc.name}" for svc in kz_watch.services
    }
    with store.session_scope() as s:
        assert store.list_incidents(s, kz_watch.name) == []  # a silent vantage is never an outage


async def test_the_probe_flow_builds_a_diffscan_baseline_then_sweeps_against_it(kz_watch, tmp_path):
    from pollwatch.flows.probe import probe_flow
    from pollwatch.probes.targets import baseline_path
    from pollwatch.settings import get_settings

    options = {
        "prefixes": [{"prefix": "127.33.0.0/23", "asn": 9198, "region": "KZ-ALA"}],
        "ports": [9],
        "timeout": 0.5,
        "baseline_per_block": 4,
    }
    watch = kz_watch.model_copy(
        update={
            "services": [],
            "vantages": [Vantage(name="almaty-2", work_pool="unused", asn=9198)],
            "sources": {**kz_watch.sources, "diffscan": SourceConfig(options=options)},
        }
    )
    first = await probe_flow(watch.model_dump(mode="json"), "almaty-2", TICK)
    assert first["observations"] == [] and "baseline" in first["notices"][0]["message"]
    assert baseline_path(get_settings().home, watch.name, "almaty-2").is_file()
    second = await probe_flow(watch.model_dump(mode="json"), "almaty-2", TICK + timedelta(minutes=5))
    by = {(o["signal"], o["asn"], o["region"]): o for o in second["observations"]}
    assert by[("diffscan", None, None)]["value"] == 1.0 and by[("diffscan", None, None)]["count"] == 2
    assert by[("diffscan", 9198, None)]["value"] == 1.0 and by[("diffscan", None, "KZ-ALA")]["source"] == "diffscan"
    assert second["notices"] == []
