"""Benchmark: what a hostile observatory costs a tick: a 200 MB answer (memory) and a dripping one (time).

The IODA fake (tests/fakes/observatories.py) answers the country's BGP series with a valid
200 MB signals envelope (`huge`), once. The real IODA client collects an hour for a KZ watch
in a child process, whose peak resident memory (ru_maxrss) is printed:
- with the default size limit (32 MiB): the answer is refused after 32 MiB, a gap and a notice;
- with the limit raised past the answer (`--unlimited` too, which is how every answer was
  read before the limit existed): the whole answer is read, parsed and turned into observations.
Then a dripping IODA (one byte every 0.5 s) with the default attempt deadline (60 s) and a 30 s
tick deadline: the wall time of the collect.

    python bench/hostile_http.py [--size-mb 200] [--unlimited] [--skip-drip]

Goals: peak RSS with the default limit under 400 MB; the dripping collect ends by its deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

T0 = datetime(2019, 6, 9, 6, 0, tzinfo=timezone.utc)
GOAL_RSS_MB = 400.0


def _watch(url: str, max_response: str | None):
    from pollwatch.playbook import SourceConfig, load_watch

    w = load_watch(ROOT / "playbooks" / "watches" / "kz-2019-presidential.yaml")
    cfg = SourceConfig(
        base_url=url,
        retries=0,
        rate_limit=0,
        max_response=max_response,
        options={"datasources": ["bgp"], "corroboration": False},
    )
    return w.model_copy(update={"providers": [], "regions": [], "sources": {"ioda": cfg}})


def child(url: str, max_response: str | None) -> None:
    """Collect once; print peak RSS (MB) and what came back, as JSON."""
    from pollwatch.sources import make_source

    w = _watch(url, max_response)
    began = time.perf_counter()
    res = asyncio.run(make_source("ioda", w).collect(w, T0 - timedelta(hours=1), T0))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "rss_mb": peak,
                "seconds": time.perf_counter() - began,
                "observations": len(res.observations),
                "gaps": len(res.gaps),
                "notice": next((n.message[:160] for n in res.notices if n.level != "info"), ""),
            }
        )
    )


def measure(fake, max_response: str | None) -> dict:
    fake.fail("huge", times=1, path="/signals/raw/country")
    args = [sys.executable, __file__, "--child", fake.url] + (["--max-response", max_response] if max_response else [])
    out = subprocess.run(
        args, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    ).stdout
    fake.clear()
    return json.loads(out.strip().splitlines()[-1])


def drip(fake) -> tuple[float, int]:
    from pollwatch.sources import make_source

    fake.drip_interval = 0.5
    fake.fail("drip", path="/signals/raw/country")
    w = _watch(fake.url, None)
    began = time.perf_counter()
    res = asyncio.run(
        make_source("ioda", w).collect(
            w, T0 - timedelta(hours=1), T0, deadline=datetime.now(timezone.utc) + timedelta(seconds=30)
        )
    )
    fake.clear()
    return time.perf_counter() - began, len(res.gaps)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument(
        "--unlimited",
        action="store_true",
        help="also read the whole answer (needs memory: about 45x its size before the limit existed)",
    )
    ap.add_argument("--skip-drip", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--max-response", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.max_response)
        return 0
    from tests.fakes.observatories import IodaFake

    with IodaFake() as fake:
        fake.huge_bytes = a.size_mb * 10**6
        announced = measure(fake, None)
        print(
            f"{a.size_mb} MB answer with its Content-Length, default limit (32 MiB): peak RSS "
            f"{announced['rss_mb']:.0f} MB, "
            f"{announced['seconds']:.1f} s, {announced['gaps']} gap(s): {announced['notice']}"
        )
        fake.huge_length = False  # no length: the limit is found by reading
        limited = measure(fake, None)
        fake.huge_length = True
        print(
            f"{a.size_mb} MB answer without a length, default limit (32 MiB): peak RSS {limited['rss_mb']:.0f} MB, "
            f"{limited['seconds']:.1f} s, {limited['gaps']} gap(s)"
        )
        met = (
            max(limited["rss_mb"], announced["rss_mb"]) < GOAL_RSS_MB and limited["gaps"] > 0 and announced["gaps"] > 0
        )
        print(
            f"RESULT name=hostile_200mb_peak_rss_mb figure={limited['rss_mb']:.0f} goal=<{GOAL_RSS_MB:.0f} "
            f"met={'yes' if met else 'no'}"
        )
        if a.unlimited:
            whole = measure(fake, f"{a.size_mb + 1}MB")
            print(
                f"{a.size_mb} MB answer, limit raised past it: peak RSS {whole['rss_mb']:.0f} MB, "
                f"{whole['seconds']:.1f} s, "
                f"{whole['observations']} observation(s)"
            )
        if not a.skip_drip:
            took, gaps = drip(fake)
            print(
                f"dripping answer (a byte every 0.5 s), 30 s tick deadline: collect ended after {took:.1f} s with "
                f"{gaps} gap(s)"
            )
            print(
                f"RESULT name=hostile_drip_collect_seconds figure={took:.1f} goal=<35 "
                f"met={'yes' if took < 35 and gaps else 'no'}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
