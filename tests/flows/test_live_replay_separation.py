"""Live, replay and demo never mix: a replay writes to the replay store, and every view of the live watch (report,
audit, coverage, a tick's chart) shows only live data, up to the tick. Real replay flow runs (test harness).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner
from sqlalchemy import text

from pollwatch import audit, store
from pollwatch.cli import app
from pollwatch.models import iso


def _cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout


@pytest.mark.usefixtures("prefect_harness")
def test_a_replay_never_shows_in_live_views(nationwide_minutes, tmp_path: Path):
    w, start, _, path = nationwide_minutes
    lo, hi = iso(start - timedelta(hours=2)), iso(start + timedelta(minutes=10))
    out = _cli(
        "replay",
        str(w.source_file),
        "--observations",
        str(path),
        "--from",
        iso(start - timedelta(minutes=5)),
        "--until",
        hi,
        "--quiet",
    )
    assert "incident(s)" in out and f"pollwatch --replay report {w.name}" in out
    replayed = json.loads(_cli("--replay", "audit", "incidents", "--json"))
    assert replayed and {r["kind"] for r in replayed} >= {"nationwide_outage"}

    # the live store: no observation, no incident, no replay run, nothing in its audit log
    with store.session_scope() as s:
        assert store.count_observations(s) == 0 and store.list_incidents(s) == []
        assert audit.entries(s) == []
    assert json.loads(_cli("audit", "incidents", "--json")) == []
    assert json.loads(_cli("audit", "runs", "--json")) == []
    coverage = _cli("coverage", "--watch", str(w.source_file), "--from", lo, "--until", hi)
    assert ": 0 observation(s), 0 gap(s)" in coverage
    live_page = tmp_path / "live.html"
    _cli("report", str(w.source_file), "--from", lo, "--until", hi, "-o", str(live_page))
    assert "data-incident-id=" not in live_page.read_text()
    replay_page = tmp_path / "replay.html"
    _cli("--replay", "report", str(w.source_file), "--from", lo, "--until", hi, "-o", str(replay_page))
    assert all(f'data-incident-id="{r["id"]}"' in replay_page.read_text() for r in replayed)
    with store.using(store.REPLAY), store.session_scope() as s:
        assert audit.verify(s).ok and [r["flow"] for r in audit.runs(s, w.name)] == ["replay"]

    # a live tick after the replay judges live data only: a quiet hour stays quiet
    quiet = tmp_path / "quiet.jsonl"
    quiet.write_text(
        "".join(
            line + "\n"
            for line in path.read_text().splitlines()
            if json.loads(line)["time"] < iso(start - timedelta(minutes=30))
        )
    )
    tick_out = _cli(
        "tick", str(w.source_file), "--at", iso(start - timedelta(minutes=30)), "--observations", str(quiet)
    )
    tick = json.loads(tick_out.strip().splitlines()[-1])  # after the console's operator notices
    assert tick["skipped"] is False and tick["incident_events"] == 0
    with store.session_scope() as s:
        assert store.list_incidents(s) == []


def test_replay_store_on_postgresql_is_its_own_schema(pg_url: str, monkeypatch: pytest.MonkeyPatch, kz_watch):
    """The same PostgreSQL database, schema pollwatch_replay: created and migrated on first use, separate tables."""
    from pollwatch.models import Family, Incident, IncidentKind

    monkeypatch.setenv("POLLWATCH_DATABASE_URL", pg_url)
    t = kz_watch.milestone_times()["polls_open"]
    inc = Incident(
        id="i-replayed",
        watch=kz_watch.name,
        country="KZ",
        family=Family.connectivity,
        kind=IncidentKind.nationwide_outage,
        start=t,
        detected_at=t,
        updated_at=t,
    )
    with store.using(store.REPLAY), store.session_scope() as s:
        store.save_incidents(s, [inc])
    with store.using(store.REPLAY), store.session_scope() as s:
        assert [i.id for i in store.list_incidents(s)] == ["i-replayed"]
        assert s.execute(text("select current_schema()")).scalar_one() == store.REPLAY_SCHEMA
    with store.session_scope() as s:
        assert store.list_incidents(s) == []
        assert s.execute(text("select current_schema()")).scalar_one() == "public"


def test_replay_store_beside_a_sqlite_store(isolated_store: str):
    assert store.replay_database_url(isolated_store) == isolated_store.replace(
        "pollwatch.sqlite", "pollwatch-replay.sqlite"
    )
    with store.using(store.REPLAY):
        assert store.database_url() != store.database_url(isolated_store)
    assert store.database_url() == isolated_store


def test_a_ticks_chart_shows_data_only_up_to_the_tick(kz_watch, monkeypatch: pytest.MonkeyPatch):
    """An alert delivered later (Slack was down) still charts what its tick knew, not what the store holds by then."""
    from pollwatch import charts
    from pollwatch.models import Family, Incident, IncidentKind, Observation
    from pollwatch.notify.delivery import store_chart

    tick = kz_watch.milestone_times()["polls_close"]
    inc = Incident(
        id="i-open",
        watch=kz_watch.name,
        country="KZ",
        family=Family.connectivity,
        kind=IncidentKind.nationwide_outage,
        start=tick - timedelta(minutes=20),
        detected_at=tick,
        updated_at=tick,
    )
    with store.session_scope() as s:
        store.upsert_observations(
            s,
            [
                Observation(time=tick + timedelta(minutes=m), source="ioda", signal="bgp", country="KZ", value=100.0)
                for m in range(-60, 65, 5)
            ],
        )
    seen: list = []
    monkeypatch.setattr(charts, "incident_chart", lambda watch, i, anomalies, obs: seen.extend(obs) or b"png")
    assert store_chart()(kz_watch, inc, []) == b"png"
    assert seen and max(o.time for o in seen) == tick


@pytest.mark.usefixtures("prefect_harness")
def test_a_replay_range_outside_the_data_says_nothing_was_replayed(nationwide_minutes):
    """'0 incident(s)' alone read as a quiet range when --from lay after the file's last observation."""
    w, start, _, path = nationwide_minutes
    result = CliRunner().invoke(
        app, ["replay", str(w.source_file), "--observations", str(path), "--from", "2030-01-01T00:00Z", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "warning: nothing replayed: no tick from 2030-01-01T00:00:00Z to " in result.stderr
    assert f"{path} holds observations from " in result.stderr and "0 incident(s)" in result.stdout
    backwards = CliRunner().invoke(
        app, ["replay", str(w.source_file), "--observations", str(path), "--from", iso(start), "--until", iso(start)]
    )
    assert backwards.exit_code == 2 and "--until" in backwards.output and "must be after --from" in backwards.output
