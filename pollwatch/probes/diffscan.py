"""Diffscan: sweep sampled addresses of the country's prefixes and judge each /24 up or down.

A target list is the country's prefixes (RIPEstat country-resource-list, or the watch's options),
each cut into /24 blocks. From each block a few addresses are probed: first those that answered
during baselining (a block's "ever responsive" set), then a deterministic pseudo-random sample.
A probe is a non-blocking TCP connect to a configured port; a SYN-ACK *or a reset* means the
address is alive, silence (timeout) or an ICMP unreachable means it is not.

Per block we keep a belief that it is up (Trinocular, Quan et al. 2013): each answer or silence
updates it by Bayes' rule with the block's availability A (the share of its probed addresses that
answered in the baseline). A block is up above 0.9 and down below 0.1; blocks in between are
probed again with further addresses (adaptive re-probing) up to `max_probes` per block, and stay
"uncertain" if still undecided. Only baseline-responsive blocks are judged when a baseline is given.

Memory stays O(blocks), not O(addresses): addresses are generated lazily from per-block arrays and
probes are driven by one callback state machine on the event loop (no coroutine or Task per
address), so a 1,000,000-address sweep holds a few arrays and `concurrency` sockets.

Observations (source `diffscan`) per country, ASN and region:
- `diffscan`: share of judged /24s that are up (up / (up + down)), `count` = judged blocks;
- `diffscan_responsive_share`: share of probes answered now, divided by the baseline's share.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import ipaddress
import _socket
import json
import select
import socket
import struct
import sys
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pollwatch.models import Observation, Provenance

SOURCE = "diffscan"

_ALIVE_ERRNOS = {0, errno.ECONNREFUSED, errno.ECONNRESET}
# The prober's own problem (no socket, no local port, no route on the vantage): not an answer either way.
_LOCAL_ERRNOS = {
    errno.EMFILE,
    errno.ENFILE,
    errno.ENOBUFS,
    errno.ENOMEM,
    errno.EADDRNOTAVAIL,
    errno.EACCES,
    errno.EPERM,
}
_LINGER0 = struct.pack("ii", 1, 0)
_P_ANSWER_IF_DOWN = 0.01  # chance an address of a down block still seems to answer (spoofed RSTs, noise)


class PrefixTarget(BaseModel):
    """One prefix to sweep, with the network and region it belongs to."""

    prefix: str
    asn: int | None = None
    region: str | None = None


class DiffscanOptions(BaseModel):
    """`sources.diffscan.options` of the playbook (all optional but `prefixes` for a real sweep)."""

    model_config = ConfigDict(extra="forbid")

    prefixes: list[PrefixTarget] = Field(
        default_factory=list, description="targets; empty: the country's from RIPEstat"
    )
    method: Literal["tcp", "icmp"] = Field(
        default="tcp", description="tcp: connect to `ports`; icmp: echo requests (needs root or CAP_NET_RAW)"
    )
    ports: list[int] = Field(default_factory=lambda: [80, 443], min_length=1)
    per_block: int = Field(default=4, ge=1, le=254, description="addresses per /24 in each round")
    max_probes: int = Field(default=16, ge=1, le=254, description="addresses per /24 at most (re-probing included)")
    baseline_per_block: int = Field(
        default=16, ge=1, le=254, description="addresses per /24 when sweeping for a baseline"
    )
    concurrency: int = Field(default=1024, ge=1, le=65000, description="connects in flight at once")
    timeout: float = Field(default=1.5, gt=0, description="seconds a probe waits for an answer")
    rate: float | None = Field(
        default=None, gt=0, description="probes per second at most (politeness); None: as fast as concurrency allows"
    )
    up: float = Field(default=0.9, gt=0.5, lt=1)
    down: float = Field(default=0.1, gt=0, lt=0.5)
    availability: float = Field(
        default=0.3, gt=0, lt=1, description="A assumed for blocks the baseline does not describe"
    )
    rounds: int = Field(default=4, ge=1, description="probing rounds at most (the first plus re-probes)")
    time_budget: float | None = Field(
        default=None,
        gt=0,
        description="seconds a sweep may take (e.g. under the tick's cadence); then no new probe starts",
    )
    seed: int = 0


class BlockBaseline(BaseModel):
    a: float = Field(description="availability: share of this block's probes that answered")
    hosts: list[int] = Field(description="last octets that answered (probed first)")


class DiffscanBaseline(BaseModel):
    """What answered during baselining, per /24 (`'10.1.2.0/24'` → availability and hosts)."""

    created_at: datetime
    blocks: dict[str, BlockBaseline] = Field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.model_dump_json())
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "DiffscanBaseline | None":
        path = Path(path)
        if not path.is_file():
            return None
        return cls.model_validate_json(path.read_text())


class GroupStats(BaseModel):
    """The verdict on the blocks of one country / ASN / region."""

    country: str | None = None
    asn: int | None = None
    region: str | None = None
    blocks: int = 0
    up: int = 0
    down: int = 0
    uncertain: int = 0
    probes: int = 0
    answers: int = 0
    baseline_share: float | None = None  # share of probes answered in the baseline (mean A)

    @property
    def up_share(self) -> float | None:
        judged = self.up + self.down
        return self.up / judged if judged else None

    @property
    def responsive_share(self) -> float | None:
        return self.answers / self.probes if self.probes else None


class DiffscanResult(BaseModel):
    """One sweep's summary (what the probe flow returns and records)."""

    started_at: datetime
    finished_at: datetime
    mode: str  # "watch" (judged against a baseline) | "baseline"
    probes: int
    answers: int
    timeouts: int
    local_errors: int
    rounds: int
    complete: bool = Field(
        default=True, description="False when the time budget ran out before every planned probe started"
    )
    probes_per_second: float
    groups: list[GroupStats]
    down_blocks: list[str] = Field(default_factory=list, description="up to 1000 /24s judged down")


# --- the probing engine -------------------------------------------------------------------------


@dataclass(slots=True)
class EngineStats:
    probes: int = 0
    answers: int = 0
    timeouts: int = 0
    local_errors: int = 0
    elapsed: float = 0.0
    complete: bool = True


def _ntoa(n: int) -> str:
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


async def tcp_sweep(  # noqa: C901 (to be split up: issue 19)
    probes: Iterable[tuple[int, int, int]],
    record: Callable[[int, bool], None],
    *,
    concurrency: int = 1024,
    timeout: float = 1.5,
    rate: float | None = None,
    budget: float | None = None,
) -> EngineStats:
    """Connect to each (IPv4 as int, port, tag) once; `record(tag, alive)` gets each verdict.

    A callback state machine on the running loop: at most `concurrency` sockets exist at once,
    probes are pulled lazily from `probes`, and the sockets sit in one epoll set of our own that
    the loop watches as a single reader (closing a socket drops it from the set: no per-probe
    handle or unregister call). Timeouts are checked in FIFO order by one timer. A reset is an
    answer (the host is there); silence or unreachable is not. After `budget` seconds no new
    probe starts (`stats.complete` is then False).
    """
    if not hasattr(select, "epoll"):
        raise RuntimeError("diffscan needs Linux (epoll); run it on a Linux vantage")
    loop = asyncio.get_running_loop()
    it = iter(probes)
    stats = EngineStats()
    ep = select.epoll()
    pending: dict[int, tuple[socket.socket, int]] = {}  # fd -> (socket, tag)
    deadlines: deque[tuple[float, int, socket.socket]] = deque()  # (deadline, fd, socket), in deadline order
    launched = 0
    exhausted = False
    done: asyncio.Future[None] = loop.create_future()
    started = time.monotonic()
    stop_at = started + budget if budget is not None else None
    sol, so_error, so_linger = socket.SOL_SOCKET, socket.SO_ERROR, socket.SO_LINGER
    af, st = socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK
    new_socket = _socket.socket  # the C socket type: no Python-level __init__/close per probe
    einprogress = errno.EINPROGRESS
    epollout = select.EPOLLOUT
    alive_errnos, local_errnos = _ALIVE_ERRNOS, _LOCAL_ERRNOS
    tick = min(max(timeout / 8, 0.005), 0.1)
    pace: list[asyncio.TimerHandle | None] = [None]

    def finish_if_idle() -> None:
        if exhausted and not pending and not done.done():
            done.set_result(None)

    def repace() -> None:
        pace[0] = None
        launch()

    def launch() -> None:
        nonlocal exhausted, launched
        slots = concurrency - len(pending)
        if rate is not None:
            allowed = int((time.monotonic() - started) * rate) + 1 - launched
            if allowed < slots:
                slots = allowed
                if pace[0] is None and not exhausted:
                    pace[0] = loop.call_later(max(1.0 / rate, 0.001), repace)
        now = time.monotonic()
        if stop_at is not None and now >= stop_at and not exhausted:
            exhausted = True
            stats.complete = False
            finish_if_idle()
            return
        while slots > 0:
            try:
                addr, port, tag = next(it)
            except StopIteration:
                exhausted = True
                finish_if_idle()
                return
            launched += 1
            try:
                sock = new_socket(af, st)
            except OSError:
                stats.local_errors += 1
                continue
            err = sock.connect_ex((_ntoa(addr), port))
            if err == einprogress:
                fd = sock.fileno()
                ep.register(fd, epollout)
                pending[fd] = (sock, tag)
                deadlines.append((now + timeout, fd, sock))
                slots -= 1
                continue
            conclude(sock, tag, err)

    def conclude(sock: socket.socket, tag: int, err: int) -> None:
        if err in local_errnos:
            stats.local_errors += 1
        else:
            stats.probes += 1
            alive = err in alive_errnos
            stats.answers += alive
            if err == 0:  # connected: close with a reset, leaving no TIME_WAIT behind
                sock.setsockopt(sol, so_linger, _LINGER0)
            record(tag, alive)
        sock.close()  # also removes it from the epoll set

    def drain() -> None:
        while True:
            events = ep.poll(0, 4096)
            for fd, _ in events:
                entry = pending.pop(fd, None)
                if entry is not None:
                    sock, tag = entry
                    conclude(sock, tag, sock.getsockopt(sol, so_error))
            if len(events) < 4096:
                return

    def on_events() -> None:
        drain()
        launch()
        finish_if_idle()

    def expire() -> None:
        drain()  # answers the kernel already has are answers, however late this loop got to them
        now = time.monotonic()
        while deadlines and (deadlines[0][0] <= now or pending.get(deadlines[0][1], (None,))[0] is not deadlines[0][2]):
            _, fd, sock = deadlines.popleft()
            entry = pending.get(fd)
            if entry is None or entry[0] is not sock:
                continue  # answered already (the fd may have been reused since)
            del pending[fd]
            sock.close()
            stats.probes += 1
            stats.timeouts += 1
            record(entry[1], False)
        launch()  # drain() or the expiries may have freed slots
        finish_if_idle()
        if not done.done():
            timer[0] = loop.call_later(tick, expire)

    loop.add_reader(ep.fileno(), on_events)
    timer: list[asyncio.TimerHandle] = [loop.call_later(tick, expire)]
    try:
        launch()
        await done
    finally:
        timer[0].cancel()
        if pace[0] is not None:
            pace[0].cancel()
        loop.remove_reader(ep.fileno())
        for sock, _ in pending.values():
            sock.close()
        ep.close()
    stats.elapsed = time.monotonic() - started
    return stats


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    words = array("H", data)
    if sys.byteorder == "little":
        words.byteswap()  # the Internet checksum sums big-endian 16-bit words
    total = sum(words)
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def icmp_available() -> str | None:
    """None when this process may send ICMP echo requests over a raw socket, else why not."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
        return None
    except OSError as exc:
        return f"no raw ICMP socket ({exc.strerror or exc}): run as root or grant CAP_NET_RAW, or use method tcp"


async def icmp_sweep(
    probes: Iterable[tuple[int, int, int]],
    record: Callable[[int, bool], None],
    *,
    concurrency: int = 1024,
    timeout: float = 1.5,
    rate: float | None = None,
    budget: float | None = None,
) -> EngineStats:
    """Like `tcp_sweep`, with ICMP echo requests over one raw socket (the port is ignored).

    The probe's tag travels in the echo payload and comes back in the reply, so a reply is
    matched to its probe without per-probe state beyond a dict entry; only an echo reply from
    the probed address is an answer.
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    ident = _hash32(id(sock), int(time.time())) & 0xFFFF
    it = iter(probes)
    stats = EngineStats()
    pending: dict[int, int] = {}  # tag -> address
    deadlines: deque[tuple[float, int]] = deque()
    held: list[tuple[int, int, int]] = []  # a probe the socket buffer refused, sent again later
    launched = 0
    exhausted = False
    done: asyncio.Future[None] = loop.create_future()
    started = time.monotonic()
    stop_at = started + budget if budget is not None else None
    tick = min(max(timeout / 8, 0.005), 0.1)
    seq = 0

    def finish_if_idle() -> None:
        if exhausted and not pending and not held and not done.done():
            done.set_result(None)

    def launch() -> None:
        nonlocal exhausted, launched, seq
        slots = concurrency - len(pending)
        if rate is not None:
            slots = min(slots, int((time.monotonic() - started) * rate) + 1 - launched)
        now = time.monotonic()
        if stop_at is not None and now >= stop_at and not exhausted:
            exhausted = True
            stats.complete = False
            held.clear()
            finish_if_idle()
            return
        while slots > 0:
            if held:
                addr, _, tag = held.pop()
            else:
                try:
                    addr, _, tag = next(it)
                except StopIteration:
                    exhausted = True
                    finish_if_idle()
                    return
            seq = (seq + 1) & 0xFFFF
            payload = struct.pack("!Q", tag)
            header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
            packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq) + payload
            try:
                sock.sendto(packet, (_ntoa(addr), 0))
            except BlockingIOError:
                held.append((addr, 0, tag))  # the send buffer is full: retry on the next timer tick
                return
            except OSError as exc:
                launched += 1
                if exc.errno in _LOCAL_ERRNOS:
                    stats.local_errors += 1
                else:  # no route, network unreachable: nothing answers there
                    stats.probes += 1
                    record(tag, False)
                continue
            launched += 1
            pending[tag] = addr
            deadlines.append((now + timeout, tag))
            slots -= 1

    def drain() -> None:
        while True:
            try:
                data, (source, _) = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            ihl = (data[0] & 0x0F) * 4
            if len(data) < ihl + 16 or data[ihl] != 0:  # echo replies only (type 0)
                continue
            if struct.unpack_from("!H", data, ihl + 4)[0] != ident:
                continue
            tag = struct.unpack_from("!Q", data, ihl + 8)[0]
            addr = pending.get(tag)
            if addr is None or _ntoa(addr) != source:
                continue  # late, duplicate, or not from the probed address
            del pending[tag]
            stats.probes += 1
            stats.answers += 1
            record(tag, True)

    def on_readable() -> None:
        drain()
        launch()
        finish_if_idle()

    def expire() -> None:
        drain()  # replies already received are answers, however late this loop got to them
        now = time.monotonic()
        while deadlines and (deadlines[0][0] <= now or deadlines[0][1] not in pending):
            _, tag = deadlines.popleft()
            if pending.pop(tag, None) is None:
                continue
            stats.probes += 1
            stats.timeouts += 1
            record(tag, False)
        launch()
        finish_if_idle()
        if not done.done():
            timer[0] = loop.call_later(tick, expire)

    loop.add_reader(sock.fileno(), on_readable)
    timer: list[asyncio.TimerHandle] = [loop.call_later(tick, expire)]
    try:
        launch()
        await done
    finally:
        timer[0].cancel()
        loop.remove_reader(sock.fileno())
        sock.close()
    stats.elapsed = time.monotonic() - started
    return stats


# --- targets, blocks and beliefs -----------------------------------------------------------------


def _hash32(*parts: int) -> int:
    return int.from_bytes(hashlib.blake2b(struct.pack(f"{len(parts)}q", *parts), digest_size=4).digest(), "big")


@dataclass
class BlockTable:
    """Per-/24 state in flat arrays (a few dozen bytes per block, nothing per address)."""

    nets: array = field(default_factory=lambda: array("I"))  # network address of the /24 as int
    lo: array = field(default_factory=lambda: array("B"))  # first and last usable last octet
    hi: array = field(default_factory=lambda: array("B"))
    asn: array = field(default_factory=lambda: array("I"))  # 0: unknown
    region: array = field(default_factory=lambda: array("H"))  # index into regions; 0: none
    regions: list[str | None] = field(default_factory=lambda: [None])
    avail: array = field(default_factory=lambda: array("f"))
    known: dict[int, bytes] = field(default_factory=dict)  # block index → baseline-responsive octets
    sent: bytearray = field(default_factory=bytearray)
    alive: bytearray = field(default_factory=bytearray)
    belief: array = field(default_factory=lambda: array("d"))
    answered: dict[int, bytearray] = field(default_factory=dict)  # block index → octets that answered

    def __len__(self) -> int:
        return len(self.nets)


def build_blocks(
    targets: Iterable[PrefixTarget], baseline: DiffscanBaseline | None, opts: DiffscanOptions
) -> BlockTable:
    """Cut prefixes into /24 blocks (more-specific prefixes first win), with baseline knowledge."""
    t = BlockTable()
    region_index: dict[str | None, int] = {None: 0}
    seen: set[int] = set()
    nets = [(ipaddress.ip_network(p.prefix, strict=False), p) for p in targets]
    nets.sort(key=lambda np: (-np[0].prefixlen, np[0]))  # more specific first
    known_by_net: dict[int, BlockBaseline] = {}
    if baseline is not None:
        for key, bb in baseline.blocks.items():
            known_by_net[int(ipaddress.ip_network(key, strict=False).network_address)] = bb
    for net, target in nets:
        if net.version != 4:
            continue  # IPv6 space is too sparse to sweep
        if target.region not in region_index:
            region_index[target.region] = len(t.regions)
            t.regions.append(target.region)
        first = int(net.network_address)
        if net.prefixlen >= 24:
            spans: Iterable[tuple[int, int, int]] = [
                (first & ~0xFF, first & 0xFF, (first & 0xFF) + net.num_addresses - 1)
            ]
        else:
            spans = ((b, 0, 255) for b in range(first, first + net.num_addresses, 256))
        for block, lo, hi in spans:
            if block in seen:
                continue
            seen.add(block)
            # skip the network and broadcast octets of a whole /24
            lo, hi = max(lo, 1), min(hi, 254)
            if lo > hi:
                continue
            bb = known_by_net.get(block)
            if baseline is not None and bb is None:
                continue  # never answered while baselining: nothing to judge it against
            idx = len(t.nets)
            t.nets.append(block)
            t.lo.append(lo)
            t.hi.append(hi)
            t.asn.append(target.asn or 0)
            t.region.append(region_index[target.region])
            t.avail.append(bb.a if bb else opts.availability)
            if bb and bb.hosts:
                t.known[idx] = bytes(h for h in bb.hosts if lo <= h <= hi)
    n = len(t.nets)
    t.sent = bytearray(n)
    t.alive = bytearray(n)
    t.belief = array("d", [0.5]) * n
    return t


def candidates(t: BlockTable, idx: int, start: int, count: int, seed: int) -> list[int]:
    """Addresses (last octets) number start .. start+count-1 to probe in block idx.

    Baseline hosts come first, then a fixed pseudo-random permutation of the block's other
    octets (stable across sweeps for a seed), so re-probing always brings new addresses.
    """
    known = t.known.get(idx, b"")
    out = [known[k] for k in range(start, min(start + count, len(known)))]
    if len(out) == count:
        return out
    skip = max(start - len(known), 0)
    lo, hi = t.lo[idx], t.hi[idx]
    size = hi - lo + 1
    off = _hash32(t.nets[idx], seed) % size
    step = 97 if size % 97 else 89  # coprime with the span: a permutation of lo..hi
    for j in range(size):
        octet = lo + (off + j * step) % size
        if octet in known:
            continue
        if skip:
            skip -= 1
            continue
        out.append(octet)
        if len(out) == count:
            break
    return out


def candidate(t: BlockTable, idx: int, k: int, seed: int) -> int:
    """The k-th address (last octet) to probe in block idx, or -1 past the end of the block."""
    got = candidates(t, idx, k, 1, seed)
    return got[0] if got else -1


def _round_probes(
    t: BlockTable, blocks: Iterable[int], per_block: int, max_probes: int, opts: DiffscanOptions
) -> Iterator[tuple[int, int, int]]:
    ports = opts.ports
    nports = len(ports)
    sent, nets, seed = t.sent, t.nets, opts.seed
    for idx in blocks:
        start = sent[idx]
        net = nets[idx]
        for k, octet in enumerate(candidates(t, idx, start, min(start + per_block, max_probes) - start, seed), start):
            sent[idx] = k + 1
            yield net | octet, ports[k % nports], (idx << 8) | octet


def _recorder(t: BlockTable) -> Callable[[int, bool], None]:
    belief, avail, alive, answered = t.belief, t.avail, t.alive, t.answered
    eps = _P_ANSWER_IF_DOWN

    def record(tag: int, ok: bool) -> None:
        idx = tag >> 8
        b, a = belief[idx], avail[idx]
        if ok:
            alive[idx] += 1
            answered.setdefault(idx, bytearray()).append(tag & 0xFF)
            up, dn = b * a, (1 - b) * eps
        else:
            up, dn = b * (1 - a), (1 - b) * (1 - eps)
        belief[idx] = up / (up + dn)

    return record


async def run_diffscan(
    targets: Iterable[PrefixTarget], opts: DiffscanOptions, baseline: DiffscanBaseline | None = None
) -> tuple[DiffscanResult, BlockTable]:
    """Sweep the targets: a first round over every block, then re-probe undecided blocks."""
    started_at = datetime.now(timezone.utc)
    mode = "watch" if baseline is not None else "baseline"
    t = build_blocks(targets, baseline, opts)
    record = _recorder(t)
    total = EngineStats()
    per_block = opts.per_block if baseline is not None else opts.baseline_per_block
    max_probes = max(opts.max_probes, per_block)
    rounds = 0
    blocks: Iterable[int] = range(len(t))
    for rounds in range(1, opts.rounds + 1):
        left = None if opts.time_budget is None else opts.time_budget - total.elapsed
        sweep = icmp_sweep if opts.method == "icmp" else tcp_sweep
        stats = await sweep(
            _round_probes(t, blocks, per_block, max_probes, opts),
            record,
            concurrency=opts.concurrency,
            timeout=opts.timeout,
            rate=opts.rate,
            budget=left,
        )
        for name in ("probes", "answers", "timeouts", "local_errors", "elapsed"):
            setattr(total, name, getattr(total, name) + getattr(stats, name))
        if not stats.complete:
            total.complete = False
            break
        # Trinocular: only blocks that look down or undecided are probed again, with new addresses.
        belief, sent = t.belief, t.sent
        undecided = [
            i for i in range(len(t)) if belief[i] <= opts.up and belief[i] >= opts.down and sent[i] < max_probes
        ]
        if not undecided:
            break
        blocks = undecided
        per_block = max(2, opts.per_block)
    result = DiffscanResult(
        started_at=started_at,
        finished_at=datetime.now(timezone.utc),
        mode=mode,
        probes=total.probes,
        answers=total.answers,
        timeouts=total.timeouts,
        local_errors=total.local_errors,
        rounds=rounds,
        complete=total.complete,
        probes_per_second=round(total.probes / total.elapsed, 1) if total.elapsed else 0.0,
        groups=summarize(t, opts),
        down_blocks=[f"{_ntoa(t.nets[i])}/24" for i in range(len(t)) if t.belief[i] < opts.down][:1000],
    )
    return result, t


def summarize(t: BlockTable, opts: DiffscanOptions) -> list[GroupStats]:
    """Block verdicts counted per country (asn=region=None), per ASN and per region."""
    groups: dict[tuple[str, Any], GroupStats] = {("country", None): GroupStats()}
    a_sums: dict[tuple[str, Any], float] = {}
    for i in range(len(t)):
        keys = [("country", None)]
        if t.asn[i]:
            keys.append(("asn", t.asn[i]))
        if t.region[i]:
            keys.append(("region", t.regions[t.region[i]]))
        b = t.belief[i]
        for key in keys:
            g = groups.get(key)
            if g is None:
                g = groups[key] = GroupStats(
                    asn=key[1] if key[0] == "asn" else None, region=key[1] if key[0] == "region" else None
                )
            g.blocks += 1
            g.probes += t.sent[i]
            g.answers += t.alive[i]
            if b > opts.up:
                g.up += 1
            elif b < opts.down:
                g.down += 1
            else:
                g.uncertain += 1
            a_sums[key] = a_sums.get(key, 0.0) + t.avail[i]
    for key, g in groups.items():
        g.baseline_share = round(a_sums[key] / g.blocks, 4) if g.blocks else None
    return sorted(groups.values(), key=lambda g: (g.asn is not None, g.region is not None, g.asn or 0, g.region or ""))


def baseline_from(t: BlockTable, opts: DiffscanOptions, created_at: datetime | None = None) -> DiffscanBaseline:
    """A baseline from a sweep: every block with an answer, its availability and its answering hosts."""
    blocks = {}
    for idx, octets in t.answered.items():
        if t.sent[idx]:
            a = min(max(len(octets) / t.sent[idx], 0.05), 0.95)
            blocks[f"{_ntoa(t.nets[idx])}/24"] = BlockBaseline(a=round(a, 3), hosts=sorted(set(octets)))
    return DiffscanBaseline(created_at=created_at or datetime.now(timezone.utc), blocks=blocks)


def diffscan_observations(
    result: DiffscanResult, country: str, time_: datetime, vantage: str | None = None
) -> list[Observation]:
    """`diffscan` (share of judged /24s up) and `diffscan_responsive_share` per country, ASN and region."""
    payload = hashlib.sha256(result.model_dump_json().encode()).hexdigest()
    prov = Provenance(
        request=f"diffscan vantage={vantage} mode={result.mode} probes={result.probes}",
        fetched_at=result.finished_at,
        payload_hash=payload,
    )
    out = []
    for g in result.groups:
        judged = g.up + g.down
        up_share = g.up_share
        common = dict(time=time_, source=SOURCE, country=country, region=g.region, asn=g.asn, provenance=prov)
        out.append(
            Observation(
                signal="diffscan", value=round(up_share, 6) if up_share is not None else None, count=judged, **common
            )
        )
        share = g.responsive_share
        if share is not None and g.baseline_share:
            out.append(
                Observation(
                    signal="diffscan_responsive_share",
                    value=round(share / g.baseline_share, 6),
                    count=g.probes,
                    **common,
                )
            )
    return out


def options_for(sources: dict[str, Any]) -> DiffscanOptions:
    """The playbook's `sources.diffscan.options` as typed options."""
    cfg = sources.get(SOURCE)
    return DiffscanOptions.model_validate(cfg.options if cfg else {})


def result_json(result: DiffscanResult) -> str:
    return json.dumps(result.model_dump(mode="json"), sort_keys=True)
