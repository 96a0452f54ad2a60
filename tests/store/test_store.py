"""The store: Alembic migrations on SQLite and PostgreSQL, idempotent upserts, the outbox."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sqlalchemy import inspect

from pollwatch import outbox, store
from pollwatch.models import Alert, Corroboration, Gap, Observation

T0 = datetime(2019, 6, 9, 5, 0, tzinfo=timezone.utc)
TABLES = {
    "observation",
    "gap",
    "notice",
    "baseline",
    "anomaly",
    "incident",
    "alert",
    "watch_state",
    "tick",
    "audit_entry",
    "lease",
    "corroboration",
    "upload",
    "alembic_version",
}


def _exercise(url: str) -> None:
    engine = store.get_engine(url)
    assert TABLES <= set(inspect(engine).get_table_names())
    assert store.current_revision(engine) is not None
    obs = [Observation(time=T0, source="ioda", signal="bgp", country="KZ", asn=9198, value=v) for v in (1.0, 2.0)]
    with store.session_scope(url) as s:
        store.upsert_observations(s, obs)  # same key twice in one batch: the later value wins
    with store.session_scope(url) as s:
        store.upsert_observations(s, obs[:1])
    with store.session_scope(url) as s:
        got = store.query_observations(s, country="KZ")
    assert len(got) == 1 and got[0].value == 1.0 and got[0].time == T0 and got[0].time.tzinfo is not None


def test_sqlite_migrates_and_upserts(isolated_store: str):
    _exercise(isolated_store)
    with store.get_engine(isolated_store).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_postgres_migrates_and_upserts(pg_url: str):
    _exercise(pg_url)


def test_outbox_keeps_an_alert_once():
    alert = Alert(
        id="a1",
        watch="w",
        incident_id="i1",
        event="start",
        sequence=1,
        destination="#c",
        idempotency_key="w:i1:start:1",
        created_at=T0,
        text="hello",
    )
    with store.session_scope() as s:
        assert len(outbox.enqueue_alerts(s, [alert])) == 1
    with store.session_scope() as s:
        assert outbox.enqueue_alerts(s, [alert]) == []
        assert [a.id for a in store.pending_alerts(s, "w")] == ["a1"]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_lease_has_one_holder_until_it_expires_or_is_released(backend: str, request) -> None:
    url = request.getfixturevalue("isolated_store" if backend == "sqlite" else "pg_url")

    def take(holder: str, ttl: timedelta = timedelta(minutes=2)) -> bool:
        with store.session_scope(url) as s:
            return store.acquire_lease(s, "deliver:kz", holder, ttl)

    assert take("a") and not take("b")  # held
    assert take("a")  # the holder renews
    assert take("a", ttl=timedelta(seconds=-1))  # renewed into the past: as if a's process died long ago
    assert take("b") and not take("a")  # b takes the expired lease, a cannot take it back
    with store.session_scope(url) as s:
        store.release_lease(s, "deliver:kz", "a")  # not a's to release: nothing happens
    assert not take("c")
    with store.session_scope(url) as s:
        store.release_lease(s, "deliver:kz", "b")
    assert take("c")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_chart_upload_file_id_is_kept_for_the_next_process(backend: str, request) -> None:
    url = request.getfixturevalue("isolated_store" if backend == "sqlite" else "pg_url")
    key = "slack:C0KZ0ALERT:1560056400.000100:pollwatch-kz-nationwide-1-start.png"
    with store.session_scope(url) as s:
        assert store.recorded_upload(s, key) is None
        store.record_upload(s, key, "F000000001")
    store.dispose_engines()  # another process: nothing cached
    with store.session_scope(url) as s:
        assert store.recorded_upload(s, key) == "F000000001"
        store.record_upload(s, key, "F000000002")  # the first never completed and Slack dropped it: a fresh upload
    with store.session_scope(url) as s:
        assert store.recorded_upload(s, key) == "F000000002"
        assert store.recorded_upload(s, key.replace("start", "end")) is None


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_gaps_of_two_signals_of_one_source_are_both_kept(backend: str, request) -> None:
    url = request.getfixturevalue("isolated_store" if backend == "sqlite" else "pg_url")
    end = T0 + timedelta(hours=1)
    gaps = [
        Gap(source="ioda", signal=sig, entity="KZ", start=T0, end=end, reason="HTTP 503")
        for sig in ("bgp", "ping-slash24", None)
    ]
    with store.session_scope(url) as s:
        assert store.add_gaps(s, "kz", gaps) == 3
    with store.session_scope(url) as s:  # the same gaps again, one of them longer now: still three rows
        assert store.add_gaps(s, "kz", gaps[:2] + [gaps[2].model_copy(update={"end": end + timedelta(hours=1)})]) == 0
    with store.session_scope(url) as s:
        kept = store.list_gaps(s, "kz")
    assert sorted((g.signal or "", g.end) for g in kept) == [
        ("", end + timedelta(hours=1)),
        ("bgp", end),
        ("ping-slash24", end),
    ]


def test_an_observatory_record_seen_again_is_updated_not_duplicated() -> None:
    ongoing = Corroboration(
        source="ioda", kind="ioda_alert", id="a1", country="KZ", entity="KZ", start=T0, level="critical"
    )
    ended = ongoing.model_copy(update={"end": T0 + timedelta(hours=2)})
    other = Corroboration(
        source="radar", kind="radar_annotation", id="a1", country="KZ", entity="KZ", start=T0, cause="POWER_OUTAGE"
    )
    with store.session_scope() as s:
        assert store.save_corroborations(s, [ongoing, other]) == 2
    with store.session_scope() as s:
        assert store.save_corroborations(s, [ended]) == 0
    with store.session_scope() as s:
        # ended before
        assert store.list_corroborations(s, "KZ", T0 + timedelta(hours=3), T0 + timedelta(hours=4)) == [other]
        got = store.list_corroborations(s, "KZ", T0, T0 + timedelta(hours=1))
    assert [(r.source, r.end) for r in got] == [("ioda", T0 + timedelta(hours=2)), ("radar", None)]


def test_a_lease_of_a_dead_holder_is_taken_over_at_once() -> None:
    import socket
    import subprocess
    import sys

    from pollwatch.notify.delivery import holder_dead, lease_holder

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead = f"{socket.gethostname()}:{gone.stdout.strip()}:nonce"
    elsewhere = "another-host:1:nonce"
    assert holder_dead(dead) and not holder_dead(lease_holder()) and not holder_dead(elsewhere)
    for held_by in (dead, elsewhere):
        with store.session_scope() as s:
            assert store.acquire_lease(s, f"deliver:{held_by}", held_by, timedelta(minutes=2))
    with store.session_scope() as s:
        assert store.acquire_lease(s, f"deliver:{dead}", "me", timedelta(minutes=2), holder_dead=holder_dead)
        assert not store.acquire_lease(s, f"deliver:{elsewhere}", "me", timedelta(minutes=2), holder_dead=holder_dead)


def test_each_signal_is_loaded_from_its_own_start() -> None:
    """A tick reloads an hourly OONI signal further back (its lag) than the five-minute IODA ones."""
    obs = [
        Observation(time=T0 + timedelta(minutes=m), source=src, signal=sig, country="KZ", value=1.0)
        for m in (0, 60, 90)
        for src, sig in (("ioda", "bgp"), ("ooni", "service_failure_rate"), ("radar", "http_requests"))
    ]
    with store.session_scope() as s:
        store.upsert_observations(s, obs)
        got = store.query_observations(
            s,
            country="KZ",
            since=T0 + timedelta(minutes=60),
            since_by_signal={"bgp": T0 + timedelta(minutes=90), "service_failure_rate": T0},
        )
    assert sorted((o.signal, int((o.time - T0).total_seconds() // 60)) for o in got) == [
        ("bgp", 90),
        ("http_requests", 60),
        ("http_requests", 90),
        ("service_failure_rate", 0),
        ("service_failure_rate", 60),
        ("service_failure_rate", 90),
    ]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_recurring_incident_is_listed_for_the_days_of_any_of_its_episodes(backend: str, request, kz_watch) -> None:
    """A recurring incident's row carries its latest episode; a report over an earlier night still finds it."""
    from tests.test_recurring import NIGHT, _nights

    url = request.getfixturevalue("isolated_store" if backend == "sqlite" else "pg_url")
    _, events = _nights(kz_watch, [NIGHT + timedelta(days=d) for d in (0, 1, 3)])  # 01:00-09:00 local, no night 3
    inc = events[-1].incident
    assert inc.pattern is not None and inc.pattern.episodes == 3 and inc.start == NIGHT + timedelta(days=3)
    with store.session_scope(url) as s:
        store.save_incidents(s, [inc])

    def listed(since: datetime, until: datetime) -> bool:
        with store.session_scope(url) as s:
            return inc.id in {i.id for i in store.list_incidents(s, watch=inc.watch, since=since, until=until)}

    day = timedelta(days=1)
    assert listed(NIGHT - timedelta(hours=1), NIGHT + timedelta(hours=1)), "the first night"
    assert listed(NIGHT + day, NIGHT + day + timedelta(hours=2)), "the second night"
    assert not listed(NIGHT + 2 * day - timedelta(hours=6), NIGHT + 2 * day + timedelta(hours=12)), "no cut that day"
    assert listed(NIGHT + 3 * day + timedelta(hours=7), NIGHT + 4 * day), "the latest night"
    assert not listed(NIGHT - 2 * day, NIGHT - day), "before it began"
