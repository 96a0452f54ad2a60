"""The database locked or briefly unavailable: a tick waits or retries and succeeds, or fails loudly
with nothing half-written.

SQLite: another connection holds the write lock (BEGIN IMMEDIATE) while a whole watch_tick runs.
PostgreSQL: the backend of the writing session is terminated (pg_terminate_backend) in the middle
of a transaction, and a pooled connection is killed between two ticks.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta

import pytest
from sqlalchemy import text

from pollwatch import store
from pollwatch.pipeline import analyse
from tests.conftest import KZ_WATCH, PG_HOST, PG_PORT


@pytest.fixture(scope="module")
def scenario(nationwide_minutes):
    """A day of history and the first minutes of the election-day nationwide outage, as a JSONL file."""
    return nationwide_minutes


def _sqlite_path(url: str) -> str:
    return url.split("///", 1)[1]


@pytest.mark.usefixtures("prefect_harness")
def test_a_tick_waits_for_a_locked_sqlite_database_then_completes(scenario, isolated_store, capsys):
    from pollwatch.flows.watch_tick import watch_tick

    w, start, _, path = scenario
    store.get_engine()  # schema in place before the other writer takes the lock
    held, release = threading.Event(), threading.Event()

    def other_writer() -> None:
        con = sqlite3.connect(_sqlite_path(isolated_store), isolation_level=None, timeout=30)
        con.execute("BEGIN IMMEDIATE")
        held.set()
        release.wait(60)
        con.execute("COMMIT")
        con.close()

    holder = threading.Thread(target=other_writer)
    holder.start()
    held.wait(30)
    timer = threading.Timer(2.0, release.set)
    timer.start()
    try:
        first = watch_tick(str(KZ_WATCH), start - timedelta(minutes=5), str(path))
        lock_was_released = release.is_set()
    finally:
        release.set()
        holder.join()
    assert first["skipped"] is False
    assert lock_was_released  # the tick waited for the other writer instead of failing
    second = watch_tick(str(KZ_WATCH), start, str(path))
    assert second["incident_events"] == 1
    assert capsys.readouterr().out.count("ONGOING: Nationwide internet outage") == 1
    with store.session_scope() as s:
        assert len(store.list_ticks(s, w.name)) == 2
        assert [a.event for a in store.list_alerts(s, w.name) if a.event != "notice"] == ["start"]


def test_a_failed_record_writes_nothing_and_a_retry_writes_everything_once(scenario, monkeypatch):
    """record_outcome is one transaction: a failure in its last write leaves no trace of the first ones."""
    from pollwatch.tasks.record import record_outcome

    w, start, observations, _ = scenario
    out = analyse(w, None, w.tick_times(start - timedelta(minutes=5), start + timedelta(minutes=5)), observations)
    assert out.incidents and out.anomalies

    def locked(*a, **k):
        raise sqlite3.OperationalError("database is locked")

    real_mark = store.mark_tick_done
    monkeypatch.setattr(store, "mark_tick_done", locked)  # the very last write of the transaction fails
    args = (w.name, out.anomalies, out.incidents, out.gaps, [])
    kwargs = dict(state=out.state, tick=start, flow_run_id=None, summary={"n": 1})
    with pytest.raises(sqlite3.OperationalError):
        record_outcome.fn(*args, **kwargs)
    with store.session_scope() as s:
        assert store.list_anomalies(s, w.name) == [] and store.list_incidents(s, w.name) == []
        assert store.list_gaps(s, w.name) == [] and store.list_ticks(s, w.name) == []
        assert store.load_watch_state(s, w.name) == (None, None)

    monkeypatch.setattr(store, "mark_tick_done", real_mark)
    record_outcome.fn(*args, **kwargs)
    with store.session_scope() as s:
        assert len(store.list_incidents(s, w.name)) == len(out.incidents)
        assert len(store.list_anomalies(s, w.name)) == len(out.anomalies)
        assert len(store.list_ticks(s, w.name)) == 1


def _terminate(pid: int) -> None:
    import psycopg

    with psycopg.connect(f"host={PG_HOST} port={PG_PORT} user=postgres dbname=test", autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.mark.postgres
@pytest.mark.usefixtures("prefect_harness")
def test_postgres_backend_terminated_mid_transaction_is_retried_without_duplicates(scenario, pg_url, monkeypatch):
    from prefect import flow

    from pollwatch.tasks.record import record_observations

    monkeypatch.setenv("POLLWATCH_DATABASE_URL", pg_url)
    _, _, observations, _ = scenario
    batch = observations[:3000]
    real = store.upsert_observations
    attempts: list[int] = []

    def dies_after_writing(session, obs, *a, **k):
        n = real(session, obs, *a, **k)
        attempts.append(n)
        if len(attempts) == 1:  # the rows are in the open transaction; now the server kills the backend
            _terminate(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
        return n

    monkeypatch.setattr(store, "upsert_observations", dies_after_writing)

    @flow(name="record-under-fault")
    def record() -> int:
        return record_observations(batch)

    assert record() == len(batch)
    assert len(attempts) == 2  # the first attempt failed at commit, the task's retry succeeded
    keys = {(o.source, o.signal, o.entity_key, o.time) for o in batch}
    with store.session_scope(pg_url) as s:
        assert store.count_observations(s) == len(keys)


@pytest.mark.postgres
def test_postgres_pooled_connection_killed_between_ticks(scenario, pg_url):
    _, _, observations, _ = scenario
    with store.session_scope(pg_url) as s:
        store.upsert_observations(s, observations[:100])
        pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
    _terminate(pid)  # the pool still holds this connection; pre-ping must replace it
    with store.session_scope(pg_url) as s:
        store.upsert_observations(s, observations[100:200])
        assert store.count_observations(s) == 200
