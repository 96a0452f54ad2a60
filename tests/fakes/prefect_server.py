"""A real Prefect server on PostgreSQL for the distributed and serve tests, and the processes around it.

`prefect_cluster()` creates a database for Prefect's server and one for pollwatch's store, starts
`prefect server start` on a free port with only the services a scheduled run needs, and yields a
`Cluster` whose `start()` runs further processes (workers, `pollwatch serve`) with the same
environment, each in its own process group with its output in `logs/<name>.log`. Everything it
started is stopped and both databases are dropped on exit. PostgreSQL unreachable: skip with
the reason, or fail when CI=true.
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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import PG_HOST, PG_PORT, REPO, _pg_reachable

# Prefect server services a scheduled deployment run does not need (events, automations, the
# run-state janitors); the scheduler stays on. Fewer loops leave more CPU to the runs on a busy machine.
# (the repossessor stays on too: it frees the concurrency slots of runs that died holding them).
_SERVICES_OFF = (
    "CANCELLATION_CLEANUP",
    "EVENT_PERSISTER",
    "EVENT_LOGGER",
    "FOREMAN",
    "LATE_RUNS",
    "PAUSE_EXPIRATIONS",
    "TASK_RUN_RECORDER",
    "TRIGGERS",
    "DB_VACUUM",
    "CLEANUP_RECONCILER",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"host={PG_HOST} port={PG_PORT} user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(sql)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """End a process group we started: `sig`, then KILL if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


@dataclass
class Cluster:
    api: str
    env: dict[str, str]
    store_url: str
    logs: Path
    cwd: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        out = open(self.logs / f"{name}.log", "wb")
        p = subprocess.Popen(
            args,
            env=self.env,
            cwd=self.cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()
        self.procs.append(p)
        return p

    def log(self, name: str, tail: int = 4000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def flow_runs(self, tag: str, states: list[str] | None = None) -> list[dict]:
        """Flow runs of the deployments carrying `tag`, oldest scheduled first, optionally in the given state types."""
        body: dict = {"deployments": {"tags": {"all_": [tag]}}, "sort": "EXPECTED_START_TIME_ASC"}
        if states:
            body["flow_runs"] = {"state": {"type": {"any_": states}}}
        return httpx.post(f"{self.api}/flow_runs/filter", json=body, timeout=10).json()

    def deployments(self, tag: str) -> list[dict]:
        body = {"deployments": {"tags": {"all_": [tag]}}}
        return httpx.post(f"{self.api}/deployments/filter", json=body, timeout=10).json()


def env_for(tmp_path: Path, prefect_db: str, store_url: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{prefect_db}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        # scheduled runs are picked up within a second or two of their time, and not so early that a
        # run waiting for its start holds the deployment's one slot while the previous tick runs
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        # a run that finds the slot taken is retried in 1 s, not 30 s (seconds-cadence ticks)
        "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "1",
        "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "1",
        "POLLWATCH_DATABASE_URL": store_url,
        "POLLWATCH_HOME": str(tmp_path / "pollwatch-home"),
        "PYTHONPATH": str(REPO),
    }
    env.update({f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in _SERVICES_OFF})
    env.pop("PREFECT_PROFILES_PATH", None)
    env.pop("PREFECT_API_URL", None)
    return env


@contextmanager
def prefect_cluster(tmp_path: Path, store_url: str | None = None) -> Iterator[Cluster]:
    """A Prefect server on its own PostgreSQL database, and pollwatch's store (PostgreSQL unless `store_url`)."""
    if not _pg_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but {PG_HOST}:{PG_PORT} is unreachable")
        pytest.skip(f"PostgreSQL unreachable at {PG_HOST}:{PG_PORT}")
    from pollwatch import store

    suffix = uuid.uuid4().hex[:8]
    prefect_db, store_db = f"pollwatch_schedule_prefect_{suffix}", f"pollwatch_schedule_store_{suffix}"
    _admin(f'CREATE DATABASE "{prefect_db}"')
    if store_url is None:
        _admin(f'CREATE DATABASE "{store_db}"')
        store_url = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{store_db}"
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    cluster = Cluster(
        api="", env=env_for(tmp_path, prefect_db, store_url), store_url=store_url, logs=logs, cwd=tmp_path
    )
    try:
        for attempt in range(3):  # the free port may be taken by someone else before the server binds it
            port = free_port()
            cluster.api = cluster.env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
            server = cluster.start(
                f"server-{attempt}",
                [
                    sys.executable,
                    "-m",
                    "prefect",
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-ui",
                    "--analytics-off",
                ],
            )
            deadline = time.monotonic() + 90
            while server.poll() is None and time.monotonic() < deadline:
                try:
                    if httpx.get(f"{cluster.api}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.25)
            else:
                log = cluster.log(f"server-{attempt}", 3000)
                stop(server)
                if "address already in use" in log and attempt < 2:
                    continue
                pytest.fail("Prefect server did not start:\n" + log)
            break
        yield cluster
    finally:
        for p in reversed(cluster.procs):
            stop(p)
        store.dispose_engines()
        _admin(f'DROP DATABASE IF EXISTS "{prefect_db}" WITH (FORCE)')
        _admin(f'DROP DATABASE IF EXISTS "{store_db}" WITH (FORCE)')
