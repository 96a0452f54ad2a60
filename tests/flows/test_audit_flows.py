"""The audit log filled by real flows: a replay and a live tick leave a complete, verifiable record."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pollwatch import audit, report, store
from pollwatch.cli import app
from pollwatch.jsonl import write_observations
from pollwatch.simulate import demo_range, election_day_events, simulate
from tests.fakes.watches import write_kz_watch

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def small_watch(tmp_path: Path):
    """A watch with two networks and one service: the same flows on a tenth of the data."""
    from pollwatch.playbook import load_watch

    path = write_kz_watch(
        tmp_path,
        "kz-audit-small",
        election="Early presidential election",
        services=[{"name": "whatsapp", "test": "whatsapp", "domains": ["web.whatsapp.com"]}],
        milestones=[{"name": "polls_close", "at": "20:00"}],
    )
    return path, load_watch(path)


def test_replay_is_on_record_and_in_the_report(small_watch, tmp_path: Path):
    from pollwatch.flows.replay import replay

    path, kz_watch = small_watch
    _, day, end = demo_range(kz_watch)
    events = [e for e in election_day_events(kz_watch) if e.kind.value in ("nationwide_outage", "service_block")]
    end = events[-1].end + timedelta(hours=2)
    sc = simulate(kz_watch, day - timedelta(hours=26), end, events, seed=2)
    obs = tmp_path / "obs.jsonl"
    write_observations(sc.observations, obs)
    result = replay(str(path), str(obs), day, end)
    ids = {i["id"] for i in result["incidents"]}
    assert ids

    with store.using(store.REPLAY), store.session_scope() as s:  # a replay is on the replay store's record
        assert audit.verify(s).ok
        runs = audit.runs(s, kz_watch.name)
        run = next(r for r in runs if r["flow"] == "replay")
        assert run["state"] == "Completed" and run["flow_run_id"] and run["playbook_hash"] == kz_watch.content_hash
        assert run["parameters"]["observations"] == str(obs) and run["summary"]
        batches = audit.entries(s, kind="observations", watch=kz_watch.name)
        assert {b.subject for b in batches} == {o.source for o in sc.observations}
        assert sum(b.payload["count"] for b in batches) == len(sc.observations)
        stored_gaps = store.list_gaps(s, kz_watch.name)
        logged_gaps = [g for e in audit.entries(s, kind="gaps", watch=kz_watch.name) for g in e.payload["gaps"]]
        assert len(logged_gaps) >= len(stored_gaps)  # every gap the run found is on record
        anomalies = audit.entries(s, kind="anomaly", watch=kz_watch.name)
        assert anomalies and all(a.payload["thresholds"]["critical"] is not None for a in anomalies)
        decided = audit.incidents(s, kz_watch.name)
        assert {r["id"] for r in decided} == ids
        assert all(r["decisions"] >= 1 for r in decided)
        queued = audit.alerts(s, kz_watch.name)
        assert len(queued) == len(result["alerts"]) and {a["destination"] for a in queued} == {"replay"}
        nationwide = next(r for r in decided if r["kind"] == "nationwide_outage")
        timeline = audit.incident_timeline(s, nationwide["id"])
        assert [e.kind for e in timeline][:1] == ["observations"]
        assert {"anomaly", "incident", "alert"} <= {e.kind for e in timeline}
        data = report.collect(s, kz_watch, day, end)
    page = report.render_html(data)
    assert all(f'data-incident-id="{i}"' in page for i in ids)
    assert len(report.keepiton_rows(kz_watch, data.incidents)) == len(ids)
    out = CliRunner().invoke(app, ["--replay", "audit", "incidents", "--watch", kz_watch.name])
    assert out.exit_code == 0 and all(i in out.output for i in ids)
    live = CliRunner().invoke(app, ["audit", "incidents", "--watch", kz_watch.name])
    assert live.exit_code == 0 and not any(i in live.output for i in ids)


def test_live_tick_alert_delivery_is_on_record(small_watch, tmp_path: Path):
    from pollwatch.flows.watch_tick import watch_tick

    path, kz_watch = small_watch
    nationwide = [e for e in election_day_events(kz_watch) if e.kind.value == "nationwide_outage"]
    start = nationwide[0].start
    sc = simulate(kz_watch, start - timedelta(hours=26), start + timedelta(minutes=5), nationwide, seed=5)
    obs = tmp_path / "obs.jsonl"
    write_observations(sc.observations, obs)
    watch_tick(str(path), start - timedelta(minutes=5), str(obs))
    watch_tick(str(path), start, str(obs))
    watch_tick(str(path), start, str(obs))  # already done: recorded as a run, nothing else
    with store.session_scope() as s:
        assert audit.verify(s).ok
        runs = [r for r in audit.runs(s, kz_watch.name) if r["flow"] == "watch-tick"]
        assert len(runs) == 3 and all(r["state"] == "Completed" for r in runs)
        assert runs[-1]["summary"].get("skipped") is True
        actions = [(a["action"], a["transport"] if "transport" in a else None) for a in audit.alerts(s, kz_watch.name)]
        sent = [e.payload for e in audit.entries(s, kind="alert") if e.payload["action"] == "sent"]
        assert [a for a, _ in actions] == ["queued", "sent"]
        assert sent[0]["transport"] == "console" and sent[0]["attempts"] == 1
