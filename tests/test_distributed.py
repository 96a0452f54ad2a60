"""A real distributed run: Prefect server on PostgreSQL, a process work pool and worker, a watch
scheduled with `pollwatch schedule` ticking every few seconds, an outage injected through the
flow's `observations` file. The worker must complete at least three ticks, open the incident and
send its alert (pollwatch's store, also on PostgreSQL), and the run history must be in Prefect's
API. Skipped when PostgreSQL is unreachable outside CI; required when CI=true.
"""

from __future__ import annotations

import os
import signal
import socket
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
from tests.conftest import PG_HOST, PG_PORT, REPO, _pg_reachable
from tests.fast_watch import fast_watch, outage_observations

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CADENCE = timedelta(seconds=5)
WAIT = 150  # seconds at most for the worker to do its part (a bound, not an assertion on speed)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"host={PG_HOST} port={PG_PORT} user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(sql)


def _stop(proc: subprocess.Popen) -> None:
    """End a process group we started: TERM, then KILL if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict]:
    """A Prefect server on its own PostgreSQL database and pollwatch's store on another."""
    if not _pg_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but {PG_HOST}:{PG_PORT} is unreachable")
        pytest.skip(f"PostgreSQL unreachable at {PG_HOST}:{PG_PORT}")
    suffix = uuid.uuid4().hex[:8]
    prefect_db, store_db = f"pollwatch_schedule_prefect_{suffix}", f"pollwatch_schedule_store_{suffix}"
    _admin(f'CREATE DATABASE "{prefect_db}"')
    _admin(f'CREATE DATABASE "{store_db}"')
    store_url = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{store_db}"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{prefect_db}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "POLLWATCH_DATABASE_URL": store_url,
        "POLLWATCH_HOME": str(tmp_path / "pollwatch-home"),
        "PYTHONPATH": str(REPO),
    }
    env.pop("PREFECT_PROFILES_PATH", None)
    logs = tmp_path / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []

    def start(name: str, args: list[str]) -> subprocess.Popen:
        out = open(logs / f"{name}.log", "wb")
        p = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        procs.append(p)
        return p

    try:
        for attempt in range(3):  # the free port may be taken by someone else before the server binds it
            port = _free_port()
            api = f"http://127.0.0.1:{port}/api"
            env["PREFECT_API_URL"] = api
            server = start(f"server-{attempt}", [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                                 "--port", str(port), "--no-ui", "--analytics-off"])
            deadline = time.monotonic() + 90
            while server.poll() is None and time.monotonic() < deadline:
                try:
                    if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            else:
                log = (logs / f"server-{attempt}.log").read_text(errors="replace")
                _stop(server)
                if "address already in use" in log and attempt < 2:
                    continue
                pytest.fail("Prefect server did not start:\n" + log[-3000:])
            break
        yield {"api": api, "env": env, "store_url": store_url, "start": start, "logs": logs}
    finally:
        for p in reversed(procs):
            _stop(p)
        store.dispose_engines()
        _admin(f'DROP DATABASE IF EXISTS "{prefect_db}" WITH (FORCE)')
        _admin(f'DROP DATABASE IF EXISTS "{store_db}" WITH (FORCE)')


def _completed_runs(api: str, watch: str) -> list[dict]:
    body = {"deployments": {"tags": {"all_": [watch_tag(watch)]}},
            "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}, "sort": "EXPECTED_START_TIME_ASC"}
    return httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json()


def test_worker_runs_scheduled_ticks_and_alerts(cluster: dict, tmp_path: Path) -> None:
    env, api = cluster["env"], cluster["api"]
    watch, path = fast_watch(tmp_path, cadence=CADENCE, length=timedelta(minutes=3), lead=timedelta(seconds=15))
    ticks = watch.resolved_phases()[0].ticks()
    obs = outage_observations(watch, tmp_path / "obs.jsonl", ticks[3], timedelta(minutes=1))
    pool = f"pollwatch-test-{uuid.uuid4().hex[:6]}"

    done = subprocess.run([sys.executable, "-m", "pollwatch.cli", "schedule", str(path), "--work-pool", pool, "--observations", str(obs)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "created ['zz-fast-watch-heightened']" in done.stdout
    cluster["start"]("worker", [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"])

    deadline = time.monotonic() + WAIT
    ticks_done, incidents, alerts, runs, matched = [], [], [], [], set()
    while time.monotonic() < deadline:
        with store.session_scope(cluster["store_url"]) as s:
            ticks_done = store.list_ticks(s, watch.name)  # a late tick a later one covered counts: it ran and was recorded
            incidents = store.list_incidents(s, watch.name)
            alerts = store.list_alerts(s, watch.name)
        runs = _completed_runs(api, watch.name)
        matched = {r["id"] for r in runs} & {t.flow_run_id for t in ticks_done}
        if len(matched) >= 3 and incidents and alerts:
            break
        time.sleep(2)
    worker_log = (cluster["logs"] / "worker.log").read_text(errors="replace")[-4000:]
    # at least three ticks completed by the worker, each recorded with its flow run in Prefect's history
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
