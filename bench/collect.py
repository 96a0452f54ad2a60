"""Benchmark: one heightened-cadence tick of collection for a large country, against local fakes.

The country has 200 networks (ASNs) and 30 regions; IODA is asked for 3 datasources for the
country, every region and every network, OONI for 20 service tests by network, RIPEstat for
the country's resources and visibility. Every fake response is delayed by 50 ms. The clients run
with their default settings (20 requests/s per host, 10 in flight, 50 IODA entities or 250 OONI
networks per request). Prints the wall time, the requests and the requests per second.

    python bench/collect.py [--latency 0.05] [--unbatched]

`--unbatched` also runs the naive layout (one IODA entity and one OONI network per request,
rate limit off) to show what batching saves.
Goal: the whole tick's collection in under 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pollwatch.playbook import Provider, Region, Service, SourceConfig, load_watch  # noqa: E402
from pollwatch.sources import collect_sources  # noqa: E402
from tests.fakes.observatories import observatories  # noqa: E402

GOAL_S = 2.0
RUNS = 5  # timed runs after a warm-up; the machine is shared, so the median is reported
TESTS = [
    "whatsapp",
    "facebook_messenger",
    "telegram",
    "signal",
    "tor",
    "vanilla_tor",
    "torsf",
    "psiphon",
    "openvpn",
    "riseupvpn",
]
DOMAINS = [
    "www.facebook.com",
    "twitter.com",
    "www.youtube.com",
    "www.instagram.com",
    "periscope.tv",
    "web.whatsapp.com",
    "t.me",
    "signal.org",
    "www.tiktok.com",
    "www.bbc.com",
]


def big_watch(urls: dict[str, str], **options: dict) -> object:
    w = load_watch(ROOT / "playbooks" / "watches" / "kz-2019-presidential.yaml")
    providers = [
        Provider(asn=64500 + i, name=f"Network {i}", type="mobile" if i % 3 == 0 else "fixed") for i in range(200)
    ]
    regions = [Region(code=f"KZ-R{i:02d}", name=f"Region {i}") for i in range(30)]
    services = [Service(name=t, test=t) for t in TESTS] + [
        Service(name=d.split(".")[-2], test="web_connectivity", domains=[d]) for d in DOMAINS
    ]
    sources = {
        name: SourceConfig(base_url=urls[name], options=options.get(name, {})) for name in ("ioda", "ooni", "ripestat")
    }
    return w.model_copy(
        update={
            "providers": providers,
            "regions": regions,
            "services": services,
            "circumvention": [],
            "sources": sources,
        }
    )


def run(watch: object, start: datetime, end: datetime) -> tuple[float, float, dict]:
    t0, c0 = time.perf_counter(), time.process_time()
    results = asyncio.run(collect_sources(watch, start, end, ["ioda", "ooni", "ripestat"]))  # type: ignore[arg-type]
    return time.perf_counter() - t0, time.process_time() - c0, results


def report(label: str, wall: float, cpu: float, results: dict) -> int:
    requests = sum(r.requests for r in results.values())
    print(
        f"{label}: {wall:.3f} s wall ({cpu:.3f} s CPU in the client), {requests} requests, {requests / wall:.0f} "
        "requests/s"
    )
    for name, r in results.items():
        problems = [n.message[:120] for n in r.notices if n.level != "info"]
        print(
            f"  {name:<9} {r.requests:>5} requests  {len(r.observations):>7} observations  {len(r.gaps):>4} gaps  "
            f"{r.seconds:.3f} s{'  PROBLEMS: ' + '; '.join(problems) if problems else ''}"
        )
    return requests


def _serve(conn: object, latency: float) -> None:
    with observatories(latency=latency) as obs:
        for fake in obs.all:
            fake.cache_responses = True  # the warm-up run fills it; the measured run pays latency, not the fake's CPU
        obs.ripestat.resources["KZ"] = {
            "asn": [str(64500 + i) for i in range(200)],
            "ipv4": ["2.72.0.0/13"],
            "ipv6": [],
        }
        # IODA's region list for the 30 regions (looked up once, in the warm-up run, as once a day in production)
        obs.ioda.regions["KZ"] = [{"code": str(5000 + i), "name": f"Region {i}", "type": "region"} for i in range(30)]
        conn.send(obs.base_urls())  # type: ignore[attr-defined]
        conn.recv()  # type: ignore[attr-defined]  # until the benchmark is done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.05, help="seconds added to every fake response")
    ap.add_argument("--unbatched", action="store_true", help="also run one entity/network per request")
    args = ap.parse_args()
    tick = datetime(2019, 6, 9, 6, 0, tzinfo=timezone.utc)
    start, end = tick - timedelta(minutes=10), tick  # a heightened tick re-reads the last cadence plus one
    # the fakes run in their own process, as a remote API would: they do not compete for this process's GIL
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(child, args.latency), daemon=True)
    server.start()
    try:
        urls = parent.recv()
        print(
            f"one heightened tick ({start:%H:%M}-{end:%H:%M} UTC), 200 ASNs, 30 regions, 3 IODA datasources, "
            f"20 OONI tests, {args.latency * 1000:.0f} ms per response"
        )
        run(big_watch(urls), start, end)  # warm-up: imports, first connections
        print(f"machine load average (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        runs = [run(big_watch(urls), start, end) for _ in range(RUNS)]
        print("wall times: " + ", ".join(f"{r[0]:.3f} s" for r in runs) + f" (the figure is the median of {RUNS})")
        wall, cpu, results = sorted(runs, key=lambda r: r[0])[RUNS // 2]
        report("batched (defaults), median run", wall, cpu, results)
        failures = sum(len(r.gaps) for r in results.values())
        if args.unbatched:
            naive = big_watch(urls, ioda={"entities_per_request": 1}, ooni={"asns_per_request": 1})
            for cfg in naive.sources.values():  # type: ignore[attr-defined]
                cfg.rate_limit = 0
                cfg.max_concurrency = 50
            n_wall, n_cpu, n_results = run(naive, start, end)
            report("unbatched (1 entity per request, no rate limit, 50 in flight)", n_wall, n_cpu, n_results)
    finally:
        parent.send("stop")
        server.join(timeout=10)
    met = wall < GOAL_S and failures == 0
    print(f"RESULT name=collect_tick_wall_seconds figure={wall:.3f} goal=<{GOAL_S} met={'yes' if met else 'no'}")


if __name__ == "__main__":
    main()
