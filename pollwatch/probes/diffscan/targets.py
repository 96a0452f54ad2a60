"""Diffscan's targets: the options, the prefixes cut into /24 blocks (a table of flat arrays, nothing per
address), the baseline that says which blocks and hosts answered, and which addresses of a block to probe."""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


def ntoa(n: int) -> str:
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def hash32(*parts: int) -> int:
    return int.from_bytes(hashlib.blake2b(struct.pack(f"{len(parts)}q", *parts), digest_size=4).digest(), "big")


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
    off = hash32(t.nets[idx], seed) % size
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


def round_probes(
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
