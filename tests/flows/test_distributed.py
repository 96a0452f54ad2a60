"""A real distributed run: Prefect server on PostgreSQL, a process work pool and worker, a watch
scheduled with `pollwatch schedule` ticking every few seconds, an outage injected through the
flow's `observations` file. The worker must complete at least three ticks, open the incident and
send its alert (pollwatch's store, also on PostgreSQL), and the run history must be in Prefect's
API. Skipped when PostgreSQL is unreachable outside CI; required when CI=true.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from pollwatch import store
from pollwatch.schedule import watch_tag
from tests.fakes.fast_watch import fast_watch, outage_observations
from tests.fakes.prefect_server import Cluster, prefect_cluster

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CADENCE = timedelta(seconds=5)
# the first tick: after the worker and `pollwatch schedule` are up (a tick before is just not scheduled)
LEAD = timedelta(seconds=10)
WAIT = 150  # seconds at most for the worker to do its part (a bound, not an assertion on speed)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A Prefect server on its own PostgreSQL database and pollwatch's store on another."""
    with prefect_cluster(tmp_path) as c:
        yield c


def test_worker_runs_scheduled_ticks_and_alerts(cluster: Cluster, tmp_path: Path) -> None:
    env, api = cluster.env, cluster.api
    watch, path = fast_watch(tmp_path, cadence=CADENCE, length=timedelta(minutes=3), lead=LEAD)
    ticks = watch.resolved_phases()[0].ticks()
    obs = outage_observations(watch, tmp_path / "obs.jsonl", ticks[2], timedelta(minutes=1))
    pool = f"pollwatch-test-{uuid.uuid4().hex[:6]}"

    # the pool first, so the worker starts while `pollwatch schedule` runs (each is a fresh Python)
    created = httpx.post(f"{api}/work_pools/", json={"name": pool, "type": "process"}, timeout=10)
    assert created.status_code == 201, created.text
    cluster.start("worker", [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"])
    done = subprocess.run(
        [sys.executable, "-m", "pollwatch.cli", "schedule", str(path), "--work-pool", pool, "--observations", str(obs)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "created ['zz-fast-watch-heightened']" in done.stdout

    deadline = time.monotonic() + WAIT
    ticks_done, incidents, alerts, runs, matched = [], [], [], [], set()
    while time.monotonic() < deadline:
        with store.session_scope(cluster.store_url) as s:
            ticks_done = [
                t for t in store.list_ticks(s, watch.name) if (t.summary or {}).get("status") != store.TICK_RUNNING
            ]
            incidents = store.list_incidents(s, watch.name)
            alerts = store.list_alerts(s, watch.name)
        runs = cluster.flow_runs(watch_tag(watch.name), ["COMPLETED"])
        matched = {r["id"] for r in runs} & {t.flow_run_id for t in ticks_done}
        if len(matched) >= 3 and incidents and alerts:
            break
        time.sleep(1)
    worker_log = cluster.log("worker")
    # at least three ticks completed by the worker, each recorded with its flow run in Prefect's history
    # (a late tick that a later one covered counts: it ran and was recorded)
    assert len(ticks_done) >= 3, worker_log
    assert len(matched) >= 3, worker_log
    # every tick is one of the phase's scheduled times (the run's scheduled start, not its late start)
    assert {t.tick for t in ticks_done} <= set(ticks)
    assert [i.kind.value for i in incidents] == ["nationwide_outage"], worker_log
    assert [a.event for a in alerts] == ["start"] and alerts[0].state.value == "sent"
    assert all(r["auto_scheduled"] for r in runs)
    # the deployment's concurrency limit: no two ticks of the watch ran at the same time
    spans = sorted((r["start_time"], r["end_time"]) for r in runs)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
