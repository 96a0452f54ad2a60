"""Web probe against real local servers: every outage type produced for real and detected."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from pollwatch.playbook import Service, SourceConfig, Vantage
from pollwatch.probes.dns import DnsStatus, is_bogon, parse_resolver, resolve
from pollwatch.probes.webprobe import (
    OutageType,
    WebprobeOptions,
    options_for,
    run_webprobes,
    service_urls,
    webprobe_observations,
)
from tests.fakes.probes import BLOCKPAGE_TEXT, PAGE_TEXT, FakeDns, FakeWeb, make_pki

DOMAIN = "pollwatch.test"
BLOCKPAGE_IP = "127.0.0.66"
TIMEOUT = 0.4


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("pki"), [f"ok.{DOMAIN}", f"*.{DOMAIN}"], ["wrong.example"])
    records = {
        f"ok.{DOMAIN}": "127.0.0.1",
        f"nx.{DOMAIN}": "nxdomain",
        f"slow.{DOMAIN}": "drop",
        f"servfail.{DOMAIN}": "servfail",
        f"bogon.{DOMAIN}": "10.10.34.34",
        f"blockip.{DOMAIN}": BLOCKPAGE_IP,
    }
    with FakeDns(records) as dns_server, FakeWeb(pki) as web:
        yield dns_server, web, pki


def _opts(pki, **kw) -> WebprobeOptions:
    base = dict(
        step_timeout=TIMEOUT,
        attempts=1,
        ca_file=str(pki["ca"]),
        bogon_exempt=["127.0.0.0/8"],
        blockpage_addresses=[BLOCKPAGE_IP],
        blockpage_fingerprints=["restricted by order of"],
    )
    return WebprobeOptions(**(base | kw))


# (service name, url template, expected outage); {p[x]} is the port of behaviour x
CASES = [
    ("ok", "https://ok.{d}:{p[ok]}/", OutageType.ok),
    ("ok_plain_http", "http://ok.{d}:{p[ok_http]}/", OutageType.ok),
    ("ok_chunked", "https://ok.{d}:{p[chunked]}/", OutageType.ok),
    ("nxdomain", "https://nx.{d}:{p[ok]}/", OutageType.dns_nxdomain),
    ("dns_timeout", "https://slow.{d}:{p[ok]}/", OutageType.dns_timeout),
    ("dns_servfail", "https://servfail.{d}:{p[ok]}/", OutageType.dns_error),
    ("dns_private", "https://bogon.{d}:{p[ok]}/", OutageType.dns_bogon),
    ("dns_blockpage_ip", "https://blockip.{d}:{p[ok]}/", OutageType.dns_bogon),
    ("refused", "https://ok.{d}:{p[refused]}/", OutageType.tcp_refused),
    ("syn_dropped", "https://ok.{d}:{p[drop]}/", OutageType.tcp_timeout),
    ("reset_plain_http", "http://ok.{d}:{p[reset_http]}/", OutageType.tcp_reset),
    ("reset_in_tls", "https://ok.{d}:{p[reset_tls]}/", OutageType.tls_failure),
    ("hang_in_tls", "https://ok.{d}:{p[hang]}/", OutageType.tls_failure),
    ("wrong_certificate", "https://ok.{d}:{p[mismatch]}/", OutageType.tls_failure),
    ("server_error", "https://ok.{d}:{p[error500]}/", OutageType.http_error),
    ("not_http", "https://ok.{d}:{p[garbage]}/", OutageType.http_error),
    ("fingerprint", "https://ok.{d}:{p[blockpage]}/", OutageType.http_blockpage),
    ("forbidden", "https://ok.{d}:{p[forbidden]}/", OutageType.http_blockpage),
]


TIMING_OUT = {"dns_timeout", "syn_dropped", "hang_in_tls"}


async def test_every_outage_type_is_produced_and_detected(servers):
    dns_server, web, pki = servers
    services = [Service(name=name, urls=[url.format(d=DOMAIN, p=web.ports)]) for name, url, _ in CASES]
    # cases that must time out get a short step timeout; the others a long one, so that a busy
    # machine cannot turn a slow answer into a timeout
    slow = await run_webprobes([s for s in services if s.name in TIMING_OUT], _opts(pki), resolver=dns_server.address)
    rest = await run_webprobes(
        [s for s in services if s.name not in TIMING_OUT], _opts(pki, step_timeout=10.0), resolver=dns_server.address
    )
    got = {r.service: r for r in slow + rest}
    for name, _, expected in CASES:
        assert got[name].outage is expected, (name, got[name].outage, got[name].detail)
    assert {e for _, _, e in CASES} == set(OutageType)
    ok = got["ok"]
    assert ok.status == 200 and ok.addresses == ["127.0.0.1"]
    assert all(v is not None and v >= 0 for v in (ok.dns_ms, ok.tcp_ms, ok.tls_ms, ok.http_ms, ok.fetch_ms))
    assert got["ok_plain_http"].tls_ms is None
    assert got["refused"].dns_ms is not None and got["refused"].tcp_ms is None
    assert "certificate" in got["wrong_certificate"].detail
    assert "reset" in got["reset_in_tls"].detail and "timed out" in got["hang_in_tls"].detail
    assert "10.10.34.34" in got["dns_private"].detail and "blockpage address" in got["dns_blockpage_ip"].detail


async def test_reply_unlike_the_control_is_a_blockpage(servers):
    dns_server, web, pki = servers
    url = f"https://ok.{DOMAIN}:{web.ports['ok']}/"
    services = [
        Service(name="matches", urls=[url], expect_status=[200], expect_contains=PAGE_TEXT),
        Service(name="other_text", urls=[url], expect_contains="something the real page says"),
        Service(name="other_status", urls=[url], expect_status=[301]),
        Service(
            name="blockpage_200", urls=[f"https://ok.{DOMAIN}:{web.ports['blockpage']}/"], expect_contains=PAGE_TEXT
        ),
    ]
    # no fingerprints configured: the blockpage is recognised by not looking like the real page
    results = await run_webprobes(
        services, _opts(pki, blockpage_fingerprints=[], step_timeout=10.0), resolver=dns_server.address
    )
    got = {r.service: r.outage for r in results}
    assert got == {
        "matches": OutageType.ok,
        "other_text": OutageType.http_blockpage,
        "other_status": OutageType.http_blockpage,
        "blockpage_200": OutageType.http_blockpage,
    }


async def test_observations_per_vantage_and_service(servers, kz_watch):
    dns_server, web, pki = servers
    good = Service(
        name="whatsapp",
        urls=[f"https://ok.{DOMAIN}:{web.ports['ok']}/"],
        transfer_url=f"https://ok.{DOMAIN}:{web.ports['ok']}/object",
    )
    blocked = Service(name="periscope", domains=[f"nx.{DOMAIN}"])
    assert service_urls(blocked) == [(f"https://nx.{DOMAIN}/", "page")]
    results = await run_webprobes(
        [good, blocked], _opts(pki, attempts=3, concurrency=4, step_timeout=10.0), resolver=dns_server.address
    )
    assert len(results) == 3 * 2 + 3
    transfer = [r for r in results if r.kind == "transfer"]
    assert all(r.outage is OutageType.ok and r.body_bytes == 32 * 1024 for r in transfer)
    vantage = Vantage(name="almaty-1", work_pool="vantage-almaty-1", asn=9198, location="KZ-ALA")
    tick = datetime(2019, 6, 9, 5, 0, tzinfo=timezone.utc)
    obs = webprobe_observations(results, kz_watch, vantage, tick)
    by = {(o.service, o.signal): o for o in obs}
    assert all(
        o.source == "webprobe" and o.asn == 9198 and o.country == "KZ" and o.region == "KZ-ALA" and o.time == tick
        for o in obs
    )
    assert by[("whatsapp", "probe_success_rate")].value == 1.0 and by[("whatsapp", "probe_success_rate")].count == 6
    assert by[("periscope", "probe_success_rate")].value == 0.0
    assert by[("periscope", "probe_outage_dns_nxdomain")].value == 3.0
    assert ("whatsapp", "probe_outage_dns_nxdomain") not in by
    rtt = by[("whatsapp", "rtt_ms")]
    assert rtt.count == 3 and rtt.value is not None and rtt.value > 0  # from the transfer object only
    assert by[("periscope", "rtt_ms")].value is None  # no fetch: no data, never an outage by itself
    for step in ("dns", "tcp", "tls", "http"):
        med, p90 = by[("whatsapp", f"probe_{step}_ms")], by[("whatsapp", f"probe_{step}_ms_p90")]
        assert med.value is not None and p90.value is not None and p90.value >= med.value
    assert ("periscope", "probe_tcp_ms") not in by and by[("periscope", "probe_dns_ms")].count == 3
    assert by[("whatsapp", "rtt_ms")].provenance.request.startswith("webprobe vantage=almaty-1")


async def test_dns_helper_against_the_local_resolver(servers):
    dns_server, _, _ = servers
    ok = await resolve(f"ok.{DOMAIN}", dns_server.address, 10.0)
    assert ok.status is DnsStatus.ok and ok.addresses == ["127.0.0.1"] and ok.elapsed_ms > 0
    assert (await resolve(f"nx.{DOMAIN}", dns_server.address, 10.0)).status is DnsStatus.nxdomain
    assert (await resolve(f"slow.{DOMAIN}", dns_server.address, 0.2)).status is DnsStatus.timeout


def test_bogons_and_resolver_notation():
    assert is_bogon("10.10.34.34") and is_bogon("192.168.1.1") and is_bogon("100.64.0.1") and is_bogon("127.0.0.1")
    assert not is_bogon("127.0.0.1", [__import__("ipaddress").ip_network("127.0.0.0/8")])
    assert not is_bogon("8.8.8.8") and not is_bogon("2a00:1450::1")
    assert parse_resolver("192.0.2.53") == ("192.0.2.53", 53)
    assert parse_resolver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_resolver("[2001:db8::53]:5353") == ("2001:db8::53", 5353)


def test_options_from_the_playbook(kz_watch):
    assert options_for(kz_watch) == WebprobeOptions()
    watch = kz_watch.model_copy(
        update={
            "sources": {
                **kz_watch.sources,
                "webprobe": SourceConfig(options={"attempts": 5, "resolver": "127.0.0.1:53"}),
            }
        }
    )
    assert options_for(watch).attempts == 5
    with pytest.raises(ValueError, match="regular expression"):
        WebprobeOptions(blockpage_fingerprints=["(unclosed"])


def test_sync_callers_can_run_probes(servers):
    dns_server, web, pki = servers
    svc = Service(name="ok", urls=[f"https://ok.{DOMAIN}:{web.ports['ok']}/"])
    results = asyncio.run(run_webprobes([svc], _opts(pki, step_timeout=10.0), resolver=dns_server.address))
    assert [r.outage for r in results] == [OutageType.ok]
    assert BLOCKPAGE_TEXT not in PAGE_TEXT


def test_cli_probes_a_watch_from_this_machine(servers, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from pollwatch.cli import app
    from tests.conftest import KZ_WATCH

    dns_server, web, pki = servers
    data = yaml.safe_load(KZ_WATCH.read_text())
    data["template"] = str(KZ_WATCH.parent.parent / "rapid-response.yaml")
    data["services"] = [
        {"name": "whatsapp", "urls": [f"https://ok.{DOMAIN}:{web.ports['ok']}/"]},
        {"name": "periscope", "urls": [f"https://ok.{DOMAIN}:{web.ports['blockpage']}/"]},
    ]
    data["sources"] = {
        "webprobe": {
            "options": {
                "attempts": 1,
                "ca_file": str(pki["ca"]),
                "bogon_exempt": ["127.0.0.0/8"],
                "blockpage_fingerprints": ["restricted by order of"],
            }
        }
    }
    path = tmp_path / "watch.yaml"
    path.write_text(yaml.safe_dump(data))
    out = CliRunner().invoke(app, ["probe", "web", str(path), "--resolver", dns_server.address])
    assert out.exit_code == 0, out.output
    lines = {line.split()[0]: line.split()[1] for line in out.output.splitlines()}
    assert lines == {"whatsapp": "ok", "periscope": "http_blockpage"}
    as_json = CliRunner().invoke(
        app, ["probe", "web", str(path), "--resolver", dns_server.address, "--json", "-s", "whatsapp"]
    )
    assert [__import__("json").loads(x)["outage"] for x in as_json.output.splitlines()] == ["ok"]
    missing = CliRunner().invoke(app, ["probe", "deploy", str(path)])
    assert missing.exit_code == 2 and "no vantages" in missing.output
