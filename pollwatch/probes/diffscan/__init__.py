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

Modules: `targets` (options, /24 blocks, which addresses to probe), `engine` (one sweep skeleton with TCP
and ICMP strategies), `belief` (Bayes updates, rounds, verdicts, baselines, observations).
"""

from pollwatch.probes.diffscan.belief import (
    SOURCE,
    DiffscanResult,
    GroupStats,
    baseline_from,
    diffscan_observations,
    options_for,
    result_json,
    run_diffscan,
    summarize,
)
from pollwatch.probes.diffscan.engine import EngineStats, icmp_available, icmp_sweep, sweep, tcp_sweep
from pollwatch.probes.diffscan.targets import (
    BlockBaseline,
    BlockTable,
    DiffscanBaseline,
    DiffscanOptions,
    PrefixTarget,
    build_blocks,
    candidate,
    candidates,
)

__all__ = [
    "SOURCE",
    "BlockBaseline",
    "BlockTable",
    "DiffscanBaseline",
    "DiffscanOptions",
    "DiffscanResult",
    "EngineStats",
    "GroupStats",
    "PrefixTarget",
    "baseline_from",
    "build_blocks",
    "candidate",
    "candidates",
    "diffscan_observations",
    "icmp_available",
    "icmp_sweep",
    "options_for",
    "result_json",
    "run_diffscan",
    "summarize",
    "sweep",
    "tcp_sweep",
]
