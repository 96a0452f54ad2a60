"""Batched ticks on a real Prefect server (PostgreSQL) with two process workers on one work pool, one of which is
killed mid-run: every due tick of every watch is completed exactly once (by its own run, or covered by the
watch's next tick when the dead worker held it), none twice and none skipped. Skipped when PostgreSQL is
unreachable outside CI; required when CI=true."""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from tests.fakes.observatories import observatories
from tests.fakes.prefect_server import prefect_cluster
from tests.fakes.world_watches import write_world_watches

from pollwatch import audit, store

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

EVERY = 10  # seconds between batch slots (and the watches' cadence)
WATCHES = 4


def _descendants(pid: int) -> list[int]:
    """The processes under `pid` (a worker's flow runs run in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill_tree(pid: int) -> None:
    for p in [pid, *_descendants(pid)]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _done(store_url: str, names: list[str]) -> dict[str, dict[datetime, dict]]:
    with store.session_scope(store_url) as s:
        return {
            n: {
                t.tick: (t.summary or {})
                for t in store.list_ticks(s, n)
                if (t.summary or {}).get("status") != store.TICK_RUNNING
            }
            for n in names
        }


def test_two_workers_split_the_watches_and_a_killed_one_skips_nothing(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pollwatch.flows.scheduling import apply_watches_schedule

    now = datetime.now(timezone.utc)
    directory = tmp_path / "watches"
    start, length = now - timedelta(minutes=10), timedelta(hours=1)
    paths = write_world_watches(directory, WATCHES, cadence=timedelta(seconds=EVERY), start=start, length=length)
    names = [p.stem for p in paths]
    with observatories() as obs, prefect_cluster(tmp_path) as cluster:
        obs.ioda.noise = 0.04
        pool = "pollwatch-world-test"
        assert httpx.post(f"{cluster.api}/work_pools/", json={"name": pool, "type": "process"}, timeout=10).is_success
        workers = [
            cluster.start(f"worker-{i}", [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool])
            for i in range(2)
        ]
        with temporary_settings(updates={PREFECT_API_URL: cluster.api}):
            apply_watches_schedule(str(directory), pool, lanes=2, every=EVERY, base_urls=obs.base_urls())

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any(_done(cluster.store_url, names).values()):
            time.sleep(1)
        first = min(t for ticks in _done(cluster.store_url, names).values() for t in ticks)
        time.sleep(EVERY / 2)  # mid-slot: the worker may be ticking
        _kill_tree(workers[0].pid)
        workers[0].wait(timeout=10)
        last = first + timedelta(seconds=EVERY * 3)  # the slots after the kill the survivor must cover
        while time.monotonic() < deadline + 30:
            done = _done(cluster.store_url, names)
            if all(last in ticks for ticks in done.values()):
                break
            time.sleep(1)
        log = cluster.log("worker-1")
        with store.session_scope(cluster.store_url) as s:
            ends = {
                n: [r for r in audit.runs(s, watch=n) if r["flow"] == "watches-tick" and r["state"] == "Completed"]
                for n in names
            }
    slots = [first + timedelta(seconds=EVERY * i) for i in range(4)]
    for n in names:
        ticks = done[n]
        # none skipped: every slot from the first to three after is completed, by its run or covered by a later one
        shown = {f"{t:%H:%M:%S}": ticks[t].get("covered_by", "ran") for t in sorted(ticks)}
        assert all(t in ticks for t in slots), (n, [f"{t:%H:%M:%S}" for t in slots], shown, log[-1500:])
        ran = [r["parameters"]["tick"] for r in ends[n]]
        # none twice: each tick ran to completion in one run at most, and those that did not were covered
        assert len(ran) == len(set(ran)), (n, ran)
        for t in slots:
            own = t.isoformat().replace("+00:00", "Z") in ran
            assert own != ("covered_by" in ticks[t]), (n, t, ticks[t])
