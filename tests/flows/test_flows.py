"""End to end through real Prefect flows (test harness: a real API on a temporary database)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pollwatch import progress, store
from pollwatch.jsonl import write_observations
from pollwatch.simulate import demo_range, election_day_events, simulate
from tests.conftest import KZ_WATCH

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_replay_flow_records_incidents_and_alerts(kz_watch, tmp_path: Path):
    from pollwatch.flows.replay import replay

    _, day, end = demo_range(kz_watch)
    sc = simulate(kz_watch, day - timedelta(hours=30), end, election_day_events(kz_watch), seed=2)
    obs = tmp_path / "obs.jsonl"
    write_observations(sc.observations, obs)
    heard: list[str] = []
    with progress.listening(lambda what, done, total: heard.append(what)):  # what `pollwatch replay`'s bar shows
        result = replay(str(KZ_WATCH), str(obs), day, end, str(tmp_path / "incidents.json"))
    assert heard[0] == "reading the observations" and heard[-1] == "recording the outcome"
    assert any(h.startswith("detecting over ") for h in heard) and "attributing" in heard
    kinds = {i["kind"] for i in result["incidents"]}
    assert kinds == {lb.kind.value for lb in sc.labels}
    assert (tmp_path / "incidents.json").is_file()
    assert any(t.startswith("[STARTED] Nationwide internet outage in KZ") for t in result["alerts"])
    with store.session_scope() as s:  # the live store holds nothing of it
        assert store.list_incidents(s) == [] and store.list_alerts(s) == []
    with store.using(store.REPLAY), store.session_scope() as s:
        stored = store.list_incidents(s, kz_watch.name)
        alerts = store.list_alerts(s, kz_watch.name)
        pending = store.pending_alerts(s, kz_watch.name)
    assert {i.kind.value for i in stored} == kinds
    assert len(alerts) == len(result["alerts"]) and all(a.destination == "replay" for a in alerts)
    assert pending == []  # a replay never leaves anything to deliver
    # replaying again changes nothing
    again = replay(str(KZ_WATCH), str(obs), day, end)
    assert [i["id"] for i in again["incidents"]] == [i["id"] for i in result["incidents"]]
    with store.using(store.REPLAY), store.session_scope() as s:
        assert len(store.list_alerts(s, kz_watch.name)) == len(alerts)


def test_watch_tick_is_idempotent_and_alerts_once(kz_watch, tmp_path: Path, capsys):
    from pollwatch.flows.watch_tick import watch_tick

    nationwide = [e for e in election_day_events(kz_watch) if e.kind.value == "nationwide_outage"]
    start = nationwide[0].start
    sc = simulate(kz_watch, start - timedelta(hours=26), start + timedelta(minutes=5), nationwide, seed=5)
    obs = tmp_path / "obs.jsonl"
    write_observations(sc.observations, obs)
    first = watch_tick(str(KZ_WATCH), start - timedelta(minutes=5), str(obs))
    assert first["skipped"] is False
    second = watch_tick(str(KZ_WATCH), start, str(obs))
    assert second["incident_events"] == 1
    assert "ONGOING: Nationwide internet outage in Kazakhstan (KZ)" in capsys.readouterr().out  # the console sink
    again = watch_tick(str(KZ_WATCH), start, str(obs))
    assert again["skipped"] is True
    assert "Nationwide internet outage" not in capsys.readouterr().out
    with store.session_scope() as s:
        everything = store.list_alerts(s, kz_watch.name)
        alerts = [a for a in everything if a.event != "notice"]  # operator notices (data gaps) go to the ops channel
        assert [a.event for a in alerts] == ["start"] and alerts[0].state.value == "sent"
        assert all(a.destination == kz_watch.alerts.ops_channel for a in everything if a.event == "notice")
        assert len(store.list_ticks(s, kz_watch.name)) == 2
