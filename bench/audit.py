"""Audit log throughput: appends per second (one transaction per 200 entries, as a tick writes
them) and verification speed over the whole chain, on a fresh SQLite store (and PostgreSQL when
reachable at 127.0.0.1:5432).

Goals: appends keep up with a tick writing a few hundred entries (>= 1,000/s), and a whole
election watch (about 10,000 entries: 5-minute ticks for four days plus baselining) verifies in
about two seconds (>= 5,000 entries/s).

    python bench/audit.py [--entries 20000]
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from datetime import datetime, timedelta, timezone

from pollwatch import audit, store

PAYLOAD = {
    "change": "opened",
    "tick": "2019-06-09T14:00:00.000000Z",
    "anomaly": {
        "source": "ioda",
        "signal": "bgp",
        "entity": {"country": "KZ", "asn": 9198},
        "expected": 1523.0,
        "observed": 41.0,
        "depth": 0.973,
        "severity": 5820.0,
        "evidence": {"threshold": 0.5, "mode": "ratio"},
    },
    "thresholds": {"warning": 0.99, "critical": 0.5, "window": "1d", "mode": "ratio"},
}


def run(url: str, n: int, batch: int = 200) -> tuple[float, float]:
    t0 = datetime(2019, 6, 9, tzinfo=timezone.utc)
    start = time.perf_counter()
    for i in range(0, n, batch):
        with store.session_scope(url) as s:
            for j in range(i, min(i + batch, n)):
                audit.append(
                    s, "anomaly", "kz-2019-presidential", f"a{j}", {**PAYLOAD, "i": j}, at=t0 + timedelta(seconds=j)
                )
    append_rate = n / (time.perf_counter() - start)
    start = time.perf_counter()
    with store.session_scope(url) as s:
        v = audit.verify(s)
    assert v.ok and v.entries == n, v.problems[:3]
    verify_rate = n / (time.perf_counter() - start)
    return append_rate, verify_rate


def report(backend: str, entries: int, append: float, verify: float) -> None:
    name = "postgres" if backend == "postgresql" else backend
    print(f"{backend}: {entries} entries; append {append:,.0f} entries/s; verify {verify:,.0f} entries/s")
    print(f"RESULT name=audit_append_{name} figure={append:.0f} goal=1000 met={'yes' if append >= 1000 else 'no'}")
    print(f"RESULT name=audit_verify_{name} figure={verify:.0f} goal=5000 met={'yes' if verify >= 5000 else 'no'}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=20000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{os.path.join(d, 'bench.sqlite')}"
        a, v = run(url, args.entries)
        store.dispose_engines()
    report("sqlite", args.entries, a, v)
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        print("postgresql: unreachable, skipped")
        return 0
    import uuid

    import psycopg

    name = f"pollwatch_bench_audit_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        a, v = run(url, args.entries)
        store.dispose_engines()
        report("postgresql", args.entries, a, v)
    finally:
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
