"""Diffscan's beliefs and verdicts: each answer or silence updates a block's belief that it is up (Bayes'
rule with the block's availability), rounds of re-probing for undecided blocks, the verdicts counted per
country, ASN and region, a baseline from a sweep, and the observations a sweep gives."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from pollwatch.models import Observation, Provenance
from pollwatch.probes.diffscan.engine import EngineStats, sweep
from pollwatch.probes.diffscan.targets import (
    BlockBaseline,
    BlockTable,
    DiffscanBaseline,
    DiffscanOptions,
    build_blocks,
    ntoa,
    round_probes,
)

if TYPE_CHECKING:
    from pollwatch.probes.diffscan.targets import PrefixTarget

SOURCE = "diffscan"
_P_ANSWER_IF_DOWN = 0.01  # chance an address of a down block still seems to answer (spoofed RSTs, noise)


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
        stats = await sweep(
            opts.method,
            round_probes(t, blocks, per_block, max_probes, opts),
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
        down_blocks=[f"{ntoa(t.nets[i])}/24" for i in range(len(t)) if t.belief[i] < opts.down][:1000],
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
            blocks[f"{ntoa(t.nets[idx])}/24"] = BlockBaseline(a=round(a, 3), hosts=sorted(set(octets)))
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
