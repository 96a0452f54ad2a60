"""Web probe benchmark: complete probes per second against local servers.

A complete probe is the whole chain against real loopback servers: a UDP DNS query to a local
resolver, a TCP connect, a TLS 1.3 handshake with SNI and certificate verification, and an HTTP
GET read to the last byte. The servers (DNS and HTTPS) run in another process so the prober has a
core of its own. Bounded: a fixed number of probes, with a time budget.

    python bench/webprobe.py [--probes 3000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GOAL = 300
NAME = "svc.pollwatch.test"


def _serve(pki_dir: str, pipe) -> None:
    from tests.fakes.probes import FakeDns, FakeWeb, make_pki

    pki = make_pki(Path(pki_dir), [NAME], ["wrong.example"])
    with FakeDns({NAME: "127.0.0.1"}) as dns_server, FakeWeb(pki) as web:
        pipe.send((dns_server.address, web.ports["ok"], str(pki["ca"])))
        pipe.recv()  # until the parent is done


async def _bench(args: argparse.Namespace, resolver: str, port: int, ca: str) -> tuple[float, float, Counter]:
    from pollwatch.playbook import Service
    from pollwatch.probes.webprobe import WebprobeOptions, run_webprobes

    opts = WebprobeOptions(
        attempts=args.probes, concurrency=args.concurrency, step_timeout=10.0, ca_file=ca, bogon_exempt=["127.0.0.0/8"]
    )
    service = Service(name="bench", urls=[f"https://{NAME}:{port}/"])
    await run_webprobes([service], opts.model_copy(update={"attempts": 20}), resolver=resolver)  # warm-up
    started, cpu = time.perf_counter(), time.process_time()
    results = await asyncio.wait_for(run_webprobes([service], opts, resolver=resolver), args.budget)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return elapsed, cpu, Counter(r.outage.value for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probes", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--budget", type=float, default=50.0, help="seconds the timed run may take")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        parent, child = multiprocessing.Pipe()
        server = multiprocessing.Process(target=_serve, args=(tmp, child), daemon=True)
        server.start()
        try:
            resolver, port, ca = parent.recv()
            elapsed, cpu, outcomes = asyncio.run(_bench(args, resolver, port, ca))
        finally:
            parent.send("stop")
            server.join(5)
            if server.is_alive():
                server.terminate()
    ok = outcomes.get("ok", 0)
    rate = ok / elapsed
    print(
        f"{args.probes} probes (DNS/UDP + TCP + TLS 1.3 + HTTP GET) at concurrency {args.concurrency} in "
        f"{elapsed:.2f} s"
    )
    print(f"outcomes: {dict(outcomes)}")
    print(f"complete successful probes per second: {rate:.0f}")
    print(
        f"prober CPU time {cpu:.1f} s: {ok / cpu:.0f} probes per CPU-second "
        f"(load average {open('/proc/loadavg').read().split()[0]}; the wall-clock rate drops when other processes "
        "share the cores)"
    )
    print(f"RESULT name=webprobe_probes_per_second figure={rate:.0f} goal={GOAL} met={'yes' if rate >= GOAL else 'no'}")


if __name__ == "__main__":
    main()
