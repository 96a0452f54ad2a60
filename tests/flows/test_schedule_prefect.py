"""Scheduling against a real Prefect API (the session's test harness), and ticks that run late,
are missed, or see the playbook change."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pollwatch import audit, store
from pollwatch.cli import app
from pollwatch.playbook import load_watch
from pollwatch.schedule import (
    AUDIT_APPLY,
    AUDIT_CHANGE,
    AUDIT_PAUSE,
    AUDIT_REMOVE,
    AUDIT_RESUME,
    concurrency_limit_name,
    watch_tag,
)
from tests.conftest import KZ_WATCH
from tests.fakes.fast_watch import fast_watch, outage_observations

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _deployments(name: str) -> dict:
    from prefect.client.orchestration import get_client

    from pollwatch.flows.scheduling import watch_deployments

    with get_client(sync_client=True) as client:
        return {d.name: d for d in watch_deployments(client, name)}


def _limit(name: str):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            return None


def test_schedule_is_idempotent_follows_edits_pauses_and_unschedules(tmp_path: Path):
    from pollwatch.flows.scheduling import apply_schedule, remove_schedule, set_paused

    pool = "pollwatch-test-pool"
    w = load_watch(KZ_WATCH)
    first = apply_schedule(w, work_pool=pool)
    assert first.work_pool_created and len(first.created) == 3 and not first.updated
    deps = _deployments(w.name)
    assert sorted(deps) == sorted(f"kz-2019-presidential-{p}" for p in ("baselining", "heightened", "aftermath"))
    heightened = deps["kz-2019-presidential-heightened"]
    assert heightened.global_concurrency_limit.limit == 1 and heightened.work_pool_name == pool
    assert heightened.parameters == {"watch": "playbooks/watches/kz-2019-presidential.yaml"}
    assert heightened.entrypoint == "flows/watch_tick.py:watch_tick" and heightened.version == w.content_hash[:12]
    assert {"pollwatch", watch_tag(w.name), "phase:heightened"} <= set(heightened.tags)
    [s] = heightened.schedules
    assert s.schedule.timezone == "Asia/Almaty" and "FREQ=MINUTELY;INTERVAL=5" in s.schedule.rrule and s.active
    assert _limit(concurrency_limit_name(w.name)).limit == 1

    again = apply_schedule(w, work_pool=pool)
    assert sorted(again.updated) == sorted(first.created) and not again.created and not again.removed
    deps2 = _deployments(w.name)
    assert {n: d.id for n, d in deps2.items()} == {n: d.id for n, d in deps.items()}
    assert all(len(d.schedules) == 1 for d in deps2.values())

    # edit mid-election: heightened every 10 minutes, no aftermath phase
    edited = tmp_path / "kz-2019-presidential.yaml"
    edited.write_text(
        KZ_WATCH.read_text()
        + """
phases:
  - {name: baselining, start: -28d, end: -1d, cadence: 1d}
  - {name: heightened, start: -1d, end: 3d, cadence: 10m}
"""
    )
    w2 = load_watch(edited)
    changed = apply_schedule(w2, work_pool=pool)
    assert changed.removed == ["kz-2019-presidential-aftermath"] and changed.previous_hash == w.content_hash
    deps3 = _deployments(w.name)
    assert sorted(deps3) == ["kz-2019-presidential-baselining", "kz-2019-presidential-heightened"]
    assert "INTERVAL=10" in deps3["kz-2019-presidential-heightened"].schedules[0].schedule.rrule
    assert deps3["kz-2019-presidential-heightened"].parameters["watch"] == str(edited.resolve())

    assert sorted(set_paused(w.name, True)) == sorted(deps3)
    assert all(d.paused for d in _deployments(w.name).values())
    apply_schedule(w2, work_pool=pool)  # re-applying keeps a paused watch paused
    assert all(d.paused for d in _deployments(w.name).values())
    set_paused(w.name, False)
    assert not any(d.paused for d in _deployments(w.name).values())
    # a stopped `pollwatch serve` leaves its deployments paused; scheduling resumes them (no coordinator paused it)
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for d in _deployments(w.name).values():
            client.pause_deployment(d.id)
    apply_schedule(w2, work_pool=pool)
    assert not any(d.paused for d in _deployments(w.name).values())

    assert sorted(remove_schedule(w.name)) == sorted(deps3)
    assert _deployments(w.name) == {} and _limit(concurrency_limit_name(w.name)) is None
    with store.session_scope() as s:
        kinds = [e.kind for e in audit.entries(s, watch=w.name)]
        assert audit.verify(s).ok
    assert kinds == [
        AUDIT_APPLY,
        AUDIT_APPLY,
        AUDIT_CHANGE,
        AUDIT_APPLY,
        AUDIT_PAUSE,
        AUDIT_APPLY,
        AUDIT_RESUME,
        AUDIT_APPLY,
        AUDIT_REMOVE,
    ]


def test_cli_schedule_pause_resume_unschedule(tmp_path: Path):
    runner = CliRunner()
    out = runner.invoke(app, ["schedule", str(KZ_WATCH), "--work-pool", "pollwatch-cli-pool"])
    assert out.exit_code == 0, out.output
    assert (
        "created ['kz-2019-presidential-baselining', 'kz-2019-presidential-heightened', "
        "'kz-2019-presidential-aftermath']" in out.output
    )
    out = runner.invoke(app, ["pause", "kz-2019-presidential"])
    assert out.exit_code == 0 and "paused" in out.output
    out = runner.invoke(app, ["resume", str(KZ_WATCH)])
    assert out.exit_code == 0 and "resumed" in out.output
    out = runner.invoke(app, ["unschedule", str(KZ_WATCH)])
    assert out.exit_code == 0 and "removed" in out.output
    out = runner.invoke(app, ["pause", "kz-2019-presidential"])
    assert out.exit_code == 1 and "no deployments" in out.output


def test_missed_ticks_are_caught_up_and_a_late_tick_sends_nothing(tmp_path: Path, capsys):
    from pollwatch.flows.watch_tick import watch_tick

    # a phase in the past: ticks T0..; the outage starts at T3; T1..T4 are missed
    w, path = fast_watch(tmp_path, now=datetime.now(timezone.utc) - timedelta(hours=1))
    ticks = w.resolved_phases()[0].ticks()
    obs = outage_observations(w, tmp_path / "obs.jsonl", ticks[3], timedelta(minutes=1))
    assert watch_tick(str(path), ticks[0], str(obs))["incident_events"] == 0
    caught_up = watch_tick(str(path), ticks[5], str(obs))
    assert caught_up["incident_events"] == 1 and caught_up["since"] <= ticks[0].isoformat()
    assert "Nationwide internet outage" in capsys.readouterr().out  # the console sink (exactly once: the outbox below)
    late = watch_tick(str(path), ticks[2], str(obs))
    assert late["skipped"] and late["covered_by"] == ticks[5].isoformat()
    assert watch_tick(str(path), ticks[6], str(obs))["alerts"] == 0
    assert "Nationwide internet outage" not in capsys.readouterr().out
    with store.session_scope() as s:
        alerts = store.list_alerts(s, w.name)
        incidents = store.list_incidents(s, w.name)
        ticks_done = store.list_ticks(s, w.name)
    assert [a.event for a in alerts] == ["start"]
    assert [i.start for i in incidents] == [ticks[3]]  # the incident starts when the outage did, not when it was seen
    assert [t.tick for t in ticks_done] == [ticks[0], ticks[2], ticks[5], ticks[6]]


def test_a_playbook_changed_between_ticks_is_noticed(tmp_path: Path):
    from pollwatch.flows.watch_tick import watch_tick

    w, path = fast_watch(tmp_path, now=datetime.now(timezone.utc) - timedelta(hours=1))
    ticks = w.resolved_phases()[0].ticks()
    obs = outage_observations(w, tmp_path / "obs.jsonl", ticks[10], timedelta(minutes=1))
    watch_tick(str(path), ticks[0], str(obs))
    path.write_text(path.read_text().replace("warning: 0.9", "warning: 0.8"))
    watch_tick(str(path), ticks[1], str(obs))
    watch_tick(str(path), ticks[2], str(obs))
    with store.session_scope() as s:
        notices = store.list_notices(s, w.name)
        last = store.list_ticks(s, w.name)[-1]
    assert len(notices) == 1 and "playbook of zz-fast-watch changed since the last tick" in notices[0].message
    assert last.summary["playbook_hash"] == load_watch(path).content_hash
