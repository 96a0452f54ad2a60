"""Diffscan benchmark: probes per second and peak memory of a 1,000,000-address sweep on loopback.

The target list is 127.0.0.0/8 cut into 65,536 /24 blocks with 16 addresses each (a baseline
sweep: 1,048,576 probes). One probe in 16 goes to a port with a listener on every loopback address
(served by an accept loop in another process: a full handshake, then our reset), the others to a
closed port (a reset). The sweep runs in a child process so that its peak RSS is its own, with a
50 s time budget so the bench stays bounded on a busy machine (it then says how far it got).

    python bench/diffscan.py [--prefix 127.0.0.0/8] [--per-block 16] [--concurrency 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RATE_GOAL = 20_000
MEMORY_GOAL_MB = 200
TARGET_ADDRESSES = 1_000_000


def _accept_forever(port_pipe) -> None:
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("0.0.0.0", 0))
    lst.listen(4096)
    port_pipe.send(lst.getsockname()[1])
    while True:
        conn, _ = lst.accept()
        conn.close()


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def child(args: argparse.Namespace) -> None:
    from pollwatch.probes.diffscan import DiffscanOptions, PrefixTarget, run_diffscan

    opts = DiffscanOptions(
        ports=[int(p) for p in args.ports.split(",")],
        baseline_per_block=args.per_block,
        max_probes=args.per_block,
        concurrency=args.concurrency,
        timeout=2.0,
        rounds=1,
        time_budget=args.budget,
        method=args.method,
    )
    started = time.perf_counter()
    cpu = time.process_time()
    result, table = asyncio.run(run_diffscan([PrefixTarget(prefix=args.prefix, asn=64500, region="LOOP")], opts))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "probes": result.probes,
                "answers": result.answers,
                "timeouts": result.timeouts,
                "local_errors": result.local_errors,
                "blocks": len(table),
                "elapsed": elapsed,
                "engine_rate": result.probes_per_second,
                "rate": result.probes / elapsed,
                "peak_mb": peak_mb,
                "cpu": cpu,
                "complete": result.complete,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prefix", default="127.0.0.0/8")
    parser.add_argument("--per-block", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=1024)
    parser.add_argument("--budget", type=float, default=50.0, help="seconds the sweep may take")
    parser.add_argument("--method", choices=["tcp", "icmp"], default="tcp")
    parser.add_argument("--ports", default="", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    parent, kid = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_accept_forever, args=(kid,), daemon=True)
    server.start()
    try:
        open_port = parent.recv()
        ports = ",".join([str(_closed_port())] * 15 + [str(open_port)])
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--prefix",
            args.prefix,
            "--per-block",
            str(args.per_block),
            "--concurrency",
            str(args.concurrency),
            "--ports",
            ports,
            "--budget",
            str(args.budget),
            "--method",
            args.method,
        ]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            raise SystemExit(1)
        r = json.loads(run.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
    planned = r["blocks"] * args.per_block
    print(
        f"target list: {args.prefix}, {r['blocks']} /24 blocks x {args.per_block} = {planned} addresses "
        f"(1 in 16 to a listener, the rest to a closed port), concurrency {args.concurrency}"
    )
    print(
        f"probed {r['probes']} of {planned}" + ("" if r["complete"] else f" (time budget of {args.budget:g} s ran out)")
    )
    print(f"answers {r['answers']}, timeouts {r['timeouts']}, local errors {r['local_errors']}")
    print(
        f"elapsed {r['elapsed']:.1f} s (whole run, incl. building blocks): {r['rate']:.0f} probes/s; engine "
        f"{r['engine_rate']:.0f} probes/s"
    )
    print(
        f"CPU time of the sweeping process {r['cpu']:.1f} s: {r['probes'] / r['cpu']:.0f} probes per CPU-second "
        "(wall-clock rate falls below this when other processes share the cores)"
    )
    print(f"peak RSS of the sweeping process: {r['peak_mb']:.1f} MB")
    full = planned >= TARGET_ADDRESSES
    if args.method != "tcp":
        print(f"(method {args.method}: no RESULT lines; the goals are measured with tcp)")
        return
    print(
        f"RESULT name=diffscan_probes_per_second figure={r['rate']:.0f} goal={RATE_GOAL} "
        f"met={'yes' if r['rate'] >= RATE_GOAL else 'no'}"
    )
    met_mem = full and r["peak_mb"] < MEMORY_GOAL_MB
    print(
        f"RESULT name=diffscan_peak_memory_mb_1M figure={r['peak_mb']:.1f} goal=<{MEMORY_GOAL_MB} "
        f"met={'yes' if met_mem else 'no'}"
    )


if __name__ == "__main__":
    main()
