"""Shared fixtures: an isolated store per test, a session-wide Prefect test harness, PostgreSQL."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Keep Prefect off the internet and out of the user's ~/.prefect during tests.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

REPO = Path(__file__).resolve().parent.parent
KZ_WATCH = REPO / "playbooks" / "watches" / "kz-2019-presidential.yaml"
REAL_DATA = REPO.parent / "shared" / "data" / "real"
PG_HOST, PG_PORT = "127.0.0.1", 5432


@pytest.fixture(autouse=True)
def isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every test gets its own SQLite store under tmp_path (POLLWATCH_HOME / POLLWATCH_DATABASE_URL)."""
    from pollwatch import store

    home = tmp_path / "pollwatch-home"
    url = f"sqlite:///{home / 'pollwatch.sqlite'}"
    monkeypatch.setenv("POLLWATCH_HOME", str(home))
    monkeypatch.setenv("POLLWATCH_DATABASE_URL", url)
    yield url
    store.dispose_engines()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test harness (ephemeral API on a temporary database) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):  # a busy machine (2 shared cores) can take over a minute
        yield


def _pg_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test; skipped when PostgreSQL is unreachable outside CI."""
    if not _pg_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but {PG_HOST}:{PG_PORT} is unreachable")
        pytest.skip(f"PostgreSQL unreachable at {PG_HOST}:{PG_PORT}")
    import psycopg

    name = f"pollwatch_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"host={PG_HOST} port={PG_PORT} user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    yield url
    from pollwatch import store

    store.dispose_engines()
    with psycopg.connect(f"host={PG_HOST} port={PG_PORT} user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def kz_watch():
    from pollwatch.playbook import load_watch

    return load_watch(KZ_WATCH)


@pytest.fixture(scope="session")
def nationwide_minutes(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The KZ watch, the onset of its election-day nationwide outage, and a day of history plus the outage's
    first minutes (simulated, seed 5), as observations and as a JSON Lines file. Read-only: shared by the
    reliability tests."""
    from datetime import timedelta

    from pollwatch.jsonl import write_observations
    from pollwatch.playbook import load_watch
    from pollwatch.simulate import election_day_events, simulate

    w = load_watch(KZ_WATCH)
    nationwide = [e for e in election_day_events(w) if e.kind.value == "nationwide_outage"]
    start = nationwide[0].start
    sc = simulate(w, start - timedelta(hours=26), start + timedelta(minutes=10), nationwide, seed=5)
    path = tmp_path_factory.mktemp("nationwide-minutes") / "obs.jsonl"
    write_observations(sc.observations, path)
    return w, start, sc.observations, path
