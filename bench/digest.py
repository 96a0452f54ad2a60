"""Cost of the observation table's digest (pollwatch.digest, docs/audit.md): what it adds to an
upsert of a tick's batch, and how fast `audit verify` recomputes it over the whole table.

Goals: a tick's batch of 2,600 observations (the KZ watch at a 5-minute cadence) upserts in under
a second with the digest; `verify` recomputes it at >= 20,000 rows/s, so a whole election watch
(about a million observations) is checked in under a minute. The cost is SHAKE-256's 2 KB per row.

    python bench/digest.py [--rows 200000] [--batch 2600]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime, timedelta, timezone

from pollwatch import store
from pollwatch.digest import TableDigest
from pollwatch.models import Observation

T0 = datetime(2019, 6, 1, tzinfo=timezone.utc)


def batch(start: int, n: int) -> list[Observation]:
    return [
        Observation(
            time=T0 + timedelta(minutes=5 * ((start + i) // 40)),
            source="ioda",
            signal="bgp",
            country="KZ",
            asn=64500 + (start + i) % 40,
            value=float(1000 + i % 97),
        )
        for i in range(n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=2600)
    args = ap.parse_args()
    os.environ["POLLWATCH_DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='pw-digest-')}/pollwatch.sqlite"
    loaded = 0
    t_upsert = []
    while loaded < args.rows:
        obs = batch(loaded, args.batch)
        t = time.perf_counter()
        with store.session_scope() as s:
            store.upsert_observations(s, obs)
        t_upsert.append(time.perf_counter() - t)
        loaded += len(obs)
    # the same batch again (a tick re-reading its lag window): every row replaced
    t = time.perf_counter()
    with store.session_scope() as s:
        store.upsert_observations(s, batch(loaded - args.batch, args.batch))
    t_replace = time.perf_counter() - t
    hashing = time.perf_counter()
    TableDigest().replace(
        [],
        [
            {
                "source": o.source,
                "signal": o.signal,
                "entity": o.entity_key,
                "time": o.time,
                "value": o.value,
                "count": o.count,
            }
            for o in batch(0, args.batch)
        ],
    )
    hashing = time.perf_counter() - hashing
    t = time.perf_counter()
    with store.session_scope() as s:
        d = store.table_digest(s)
        assert d == store.stored_digest(s)
    t_verify = time.perf_counter() - t
    rate = d.rows / t_verify
    median = sorted(t_upsert)[len(t_upsert) // 2]
    print(
        f"{d.rows} rows in batches of {args.batch}: upsert median {median * 1000:.0f} ms (digest hashing alone "
        f"{hashing * 1000:.0f} ms), re-upsert of a whole batch {t_replace * 1000:.0f} ms; recompute {t_verify:.1f} s"
    )
    print(
        f"RESULT name=digest_upsert_batch_ms figure={median * 1000:.0f} goal=1000 met={'yes' if median < 1 else 'no'}"
    )
    print(f"RESULT name=digest_verify_rows_per_s figure={rate:.0f} goal=20000 met={'yes' if rate >= 20_000 else 'no'}")


if __name__ == "__main__":
    main()
