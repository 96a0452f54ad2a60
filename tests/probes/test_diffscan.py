"""Diffscan against real sockets: loopback blocks that answer (listeners, resets) or silently drop
(full accept queues), and a network namespace whose routes black-hole a /24 (root only)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from datetime import datetime, timezone

import pytest

from pollwatch.probes.diffscan import (
    BlockBaseline,
    DiffscanBaseline,
    DiffscanOptions,
    PrefixTarget,
    baseline_from,
    build_blocks,
    candidate,
    diffscan_observations,
    options_for,
    run_diffscan,
    tcp_sweep,
)
from tests.fakes.probes import full_listener

TICK = datetime(2019, 6, 9, 5, 0, tzinfo=timezone.utc)


@pytest.fixture
def loopback_net():
    """127.30.0.0/23 answers (an accepting listener on .0.5, resets elsewhere); 127.30.2.0/29 drops every SYN."""
    keep: list[socket.socket] = []
    port, socks = full_listener("127.30.2.1")
    keep += socks
    for host in range(2, 8):
        keep += full_listener(f"127.30.2.{host}", port)[1]
    accepting = socket.socket()
    accepting.bind(("127.30.0.5", port))
    accepting.listen(64)
    keep.append(accepting)
    targets = [
        PrefixTarget(prefix="127.30.0.0/23", asn=100, region="KZ-ALA"),
        PrefixTarget(prefix="127.30.2.0/29", asn=200, region="KZ-AST"),
    ]
    yield port, targets
    for s in keep:
        s.close()


async def test_baseline_sweep_then_watch_sweep_on_loopback(loopback_net):
    port, targets = loopback_net
    opts = DiffscanOptions(ports=[port], timeout=0.3, baseline_per_block=8, max_probes=8, per_block=2)
    result, table = await run_diffscan(targets, opts)
    assert result.mode == "baseline" and result.rounds == 1
    groups = {(g.asn, g.region): g for g in result.groups}
    country = groups[(None, None)]
    assert (country.blocks, country.up, country.down, country.uncertain) == (3, 2, 1, 0)
    assert groups[(200, None)].down == 1 and groups[(100, None)].up == 2 and groups[(None, "KZ-AST")].down == 1
    assert result.down_blocks == ["127.30.2.0/24"]
    assert result.timeouts == 7 and result.probes == 8 + 8 + 7  # the /29 has only 7 usable hosts
    assert result.local_errors == 0

    baseline = baseline_from(table, opts, TICK)
    assert set(baseline.blocks) == {"127.30.0.0/24", "127.30.1.0/24"}
    assert all(len(b.hosts) == 8 for b in baseline.blocks.values())

    # a watch sweep probes only blocks that answered in the baseline, their known hosts first
    watched, table2 = await run_diffscan(targets, opts, baseline)
    assert watched.mode == "watch" and watched.probes == 4  # 2 blocks x per_block 2; up at once
    assert {table2.nets[i] & 0xFF for i in range(len(table2))} == {0}
    for idx, octets in table2.answered.items():
        key = f"127.30.{(table2.nets[idx] >> 8) & 255}.0/24"
        assert set(octets) <= set(baseline.blocks[key].hosts)
    obs = diffscan_observations(watched, "KZ", TICK, vantage="almaty-1")
    country_obs = next(o for o in obs if o.signal == "diffscan" and o.asn is None and o.region is None)
    assert country_obs.value == 1.0 and country_obs.count == 2 and country_obs.source == "diffscan"


async def test_blocks_that_look_down_are_reprobed_before_they_are_declared_down(loopback_net):
    port, targets = loopback_net
    baseline = DiffscanBaseline(
        created_at=TICK,
        blocks={
            "127.30.0.0/24": BlockBaseline(a=0.5, hosts=[5, 9]),
            "127.30.1.0/24": BlockBaseline(a=0.5, hosts=[1]),
            "127.30.2.0/24": BlockBaseline(a=0.5, hosts=[1, 2, 3, 4, 5, 6, 7]),
        },
    )
    opts = DiffscanOptions(ports=[port], timeout=0.3, per_block=2, max_probes=6)
    result, table = await run_diffscan(targets, opts, baseline)
    idx = {table.nets[i]: i for i in range(len(table))}
    dropped = idx[int.from_bytes(bytes([127, 30, 2, 0]), "big")]
    # two silent probes leave belief ~0.2 (undecided): a second round of two more decides "down"
    assert result.rounds == 2 and table.sent[dropped] == 4 and table.belief[dropped] < opts.down
    assert result.down_blocks == ["127.30.2.0/24"]
    asn200 = next(g for g in result.groups if g.asn == 200)
    assert (asn200.up, asn200.down) == (0, 1)
    obs = {(o.signal, o.asn, o.region): o for o in diffscan_observations(result, "KZ", TICK)}
    assert obs[("diffscan", None, None)].value == pytest.approx(2 / 3)
    assert obs[("diffscan", 200, None)].value == 0.0 and obs[("diffscan", 100, None)].value == 1.0
    assert obs[("diffscan", None, "KZ-ALA")].value == 1.0
    assert obs[("diffscan_responsive_share", 200, None)].value == 0.0


async def test_engine_keeps_concurrency_bounded_and_pulls_targets_lazily():
    outstanding, peak, pulled = 0, 0, 0
    verdicts: list[bool] = []

    def probes():
        nonlocal outstanding, peak, pulled
        base = int.from_bytes(bytes([127, 31, 0, 0]), "big")
        for i in range(2000):
            pulled += 1
            outstanding += 1
            peak = max(peak, outstanding)
            yield base + i, 9, i

    def record(tag: int, alive: bool) -> None:
        nonlocal outstanding
        outstanding -= 1
        verdicts.append(alive)

    stats = await tcp_sweep(probes(), record, concurrency=16, timeout=1.0)
    assert pulled == 2000 and stats.probes == 2000 and stats.answers == 2000  # resets count as alive
    assert len(verdicts) == 2000 and all(verdicts)
    assert peak <= 16 + 1  # never more than `concurrency` targets generated ahead of their verdicts


async def test_rate_limit_paces_probes():
    seen: list[int] = []
    base = int.from_bytes(bytes([127, 32, 0, 0]), "big")
    stats = await tcp_sweep(
        ((base + i, 9, i) for i in range(30)),
        lambda tag, ok: seen.append(tag),
        concurrency=100,
        rate=300.0,
        timeout=0.5,
    )
    assert stats.probes == 30 and sorted(seen) == list(range(30))


def test_candidates_prefer_baseline_hosts_then_cover_the_block_once():
    opts = DiffscanOptions()
    baseline = DiffscanBaseline(created_at=TICK, blocks={"198.51.100.0/24": BlockBaseline(a=0.5, hosts=[7, 200, 3])})
    t = build_blocks([PrefixTarget(prefix="198.51.100.0/24"), PrefixTarget(prefix="203.0.113.0/24")], baseline, opts)
    assert len(t) == 1  # the block without a baseline answer is not judged
    order = [candidate(t, 0, k, opts.seed) for k in range(254)]
    assert order[:3] == [7, 200, 3]
    assert sorted(order) == list(range(1, 255)) and candidate(t, 0, 254, opts.seed) == -1
    t2 = build_blocks(
        [PrefixTarget(prefix="203.0.113.0/22"), PrefixTarget(prefix="203.0.113.128/25", asn=7)], None, opts
    )
    assert len(t2) == 4  # overlapping prefixes: each /24 once, the more specific first
    assert t2.asn[0] == 7 and (t2.lo[0], t2.hi[0]) == (128, 254)
    assert {candidate(t2, 0, k, 1) for k in range(127)} == set(range(128, 255))
    assert options_for({}) == DiffscanOptions()


def _netns_available() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    probe = f"pwprobe{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


_IN_NAMESPACE = """
import asyncio, json, sys
from pollwatch.probes.diffscan import DiffscanOptions, PrefixTarget, run_diffscan
targets = [PrefixTarget(prefix="198.18.1.0/24", asn=1), PrefixTarget(prefix="198.18.2.0/24", asn=2)]
opts = DiffscanOptions(method=sys.argv[1], ports=[443], timeout=0.3, baseline_per_block=8, max_probes=8)
result, _ = asyncio.run(run_diffscan(targets, opts))
print(result.model_dump_json())
"""


@pytest.fixture(scope="module")
def namespace():
    """A network namespace: 198.18.1.0/24 is local (answers), 198.18.2.0/24 is routed into a black hole."""
    reason = _netns_available()
    if reason:
        pytest.skip(reason)
    ns = f"pwscan{uuid.uuid4().hex[:6]}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True)

    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        ip("link", "set", "lo", "up")
        ip("addr", "add", "198.18.1.0/24", "dev", "lo")  # a whole /24 of local hosts: resets and echo replies
        # a veth pair whose far end has no address: packets routed into it vanish (silent drop)
        ip("link", "add", "pwa", "type", "veth", "peer", "name", "pwb")
        ip("addr", "add", "198.18.0.1/30", "dev", "pwa")
        ip("link", "set", "pwa", "up")
        ip("link", "set", "pwb", "up")
        ip("neigh", "add", "198.18.0.2", "lladdr", "02:00:00:00:00:02", "dev", "pwa", "nud", "permanent")
        ip("route", "add", "198.18.2.0/24", "via", "198.18.0.2", "dev", "pwa")
        # this namespace's own ICMP rate limit (the kernel's default, 1000/s with bursts of 50, would drop echo replies)
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-q",
                "-w",
                "net.ipv4.icmp_msgs_per_sec=1000000",
                "net.ipv4.icmp_msgs_burst=1000000",
            ],
            capture_output=True,
        )
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.mark.parametrize("method", ["tcp", "icmp"])
def test_silent_drops_in_a_network_namespace(namespace, method):
    run = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", _IN_NAMESPACE, method],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["down_blocks"] == ["198.18.2.0/24"]
    by_asn = {g["asn"]: g for g in result["groups"]}
    assert (by_asn[1]["up"], by_asn[1]["down"]) == (1, 0)
    assert (by_asn[2]["up"], by_asn[2]["down"]) == (0, 1)
    assert result["timeouts"] == 8 and result["answers"] == 8


def test_sync_callers_can_sweep(loopback_net):
    port, targets = loopback_net
    result, _ = asyncio.run(run_diffscan(targets[:1], DiffscanOptions(ports=[port], timeout=0.3, baseline_per_block=2)))
    assert result.probes == 4 and result.answers == 4


async def test_time_budget_stops_new_probes_and_says_so(loopback_net):
    port, targets = loopback_net
    stats = await tcp_sweep(((i, 9, i) for i in range(10)), lambda tag, ok: None, budget=0.0)
    assert stats.probes == 0 and not stats.complete
    result, _ = await run_diffscan(targets, DiffscanOptions(ports=[port], timeout=0.3, time_budget=0.000001))
    assert not result.complete
    country = next(g for g in result.groups if g.asn is None and g.region is None)
    assert country.up + country.down < country.blocks  # unprobed blocks stay uncertain, never down


# --- targets from RIPEstat (a local fake of its Data API; nothing here is probed) ---------------


def _ripestat_fake():
    from tests.fakes.observatories import RipestatFake

    class Ripe(RipestatFake):
        announced = {"AS9198": ["2.72.0.0/14", "2a00:1b60::/32"], "AS29355": ["2.76.0.0/15"]}

        def respond(self, path, query, headers, empty):
            if path == "/data/announced-prefixes/data.json":
                prefixes = [{"prefix": p, "timelines": []} for p in self.announced.get(query["resource"], [])]
                return 200, self._envelope("announced-prefixes", {"prefixes": prefixes, "resource": query["resource"]})
            if path == "/data/whats-my-ip/data.json":
                return 200, self._envelope("whats-my-ip", {"ip": "192.0.2.10"})
            if path == "/data/network-info/data.json":
                return 200, self._envelope("network-info", {"asns": ["9198"], "prefix": "192.0.2.0/24"})
            return super().respond(path, query, headers, empty)

    fake = Ripe()
    fake.resources["KZ"] = {"asn": ["9198", "29355"], "ipv4": ["2.72.0.0/13", "5.34.0.0/22"], "ipv6": []}
    return fake


async def test_targets_come_from_ripestat_with_provider_asns(kz_watch):
    from pollwatch.probes.targets import diffscan_targets, vantage_asn
    from pollwatch.sources import RipestatSource
    from tests.fakes.observatories import fast_config

    with _ripestat_fake() as fake:
        source = RipestatSource(fast_config(fake.url))
        targets = await diffscan_targets(kz_watch, DiffscanOptions(), source=source)
        assert await vantage_asn(source) == (9198, "192.0.2.10")
        requests = len(fake.requests)
        again = await diffscan_targets(kz_watch, DiffscanOptions(), source=source)
        assert again == targets and len(fake.requests) == requests  # cached for a day
    assert [(t.prefix, t.asn) for t in targets] == [
        ("2.72.0.0/14", 9198),
        ("2.76.0.0/15", 29355),
        ("2.72.0.0/13", None),
        ("5.34.0.0/22", None),
    ]
    table = build_blocks(targets, None, DiffscanOptions())
    asn_of = {table.nets[i] >> 8: table.asn[i] for i in range(len(table))}
    assert len(table) == 2048 + 4  # the /13 once, its more-specific parts tagged with their ASNs
    assert asn_of[(2 << 16) | (72 << 8)] == 9198 and asn_of[(2 << 16) | (77 << 8) | 255] == 29355
    assert asn_of[(2 << 16) | (78 << 8)] == 0 and asn_of[(5 << 16) | (34 << 8)] == 0
    explicit = [PrefixTarget(prefix="127.0.0.0/24", asn=1)]
    assert await diffscan_targets(kz_watch, DiffscanOptions(prefixes=explicit)) == explicit


async def test_engine_keeps_launching_when_the_timer_collects_the_answers():
    # a timer tick every 5 ms drains answers before the loop's reader does: it must refill the
    # freed slots itself (it once did not, and a sweep larger than `concurrency` stalled for ever)
    base = int.from_bytes(bytes([127, 35, 0, 0]), "big")
    seen = []
    stats = await asyncio.wait_for(
        tcp_sweep(
            ((base + i, 9, i) for i in range(20000)), lambda tag, ok: seen.append(ok), concurrency=8, timeout=0.04
        ),
        60,
    )
    assert stats.probes == 20000 and len(seen) == 20000 and stats.answers + stats.timeouts == 20000
