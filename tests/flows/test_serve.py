"""`pollwatch serve` as the long-lived process it is: on a real Prefect server (PostgreSQL) and on
the embedded default (no server configured), with a watch ticking every few seconds and an outage
injected through the flow's `observations` file. The ticks must run and alert; SIGTERM or SIGINT
must let the tick in progress finish, leave no run in progress and exit 0; serving again must
update the same deployment and tick again."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from pollwatch import audit, store
from pollwatch.cli import app
from pollwatch.schedule import AUDIT_APPLY, watch_tag
from tests.conftest import KZ_WATCH
from tests.fakes.fast_watch import fast_watch, outage_observations
from tests.fakes.prefect_server import env_for, prefect_cluster, stop

CADENCE = timedelta(seconds=5)
WAIT = 120  # seconds at most for each stage (a bound, not an assertion on speed)
IN_FLIGHT = ("PENDING", "RUNNING", "CANCELLING")


def _serve_args(path: Path, obs: Path) -> list[str]:
    return [sys.executable, "-m", "pollwatch.cli", "serve", str(path), "--observations", str(obs), "--grace", "60"]


def _wait(what: str, check, proc: subprocess.Popen, log) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if check():
            return
        assert proc.poll() is None, f"serve exited with {proc.returncode} while waiting for {what}:\n{log()}"
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}:\n{log()}")


def _store_state(url: str, watch: str) -> tuple[list, list, list]:
    with store.session_scope(url) as s:
        return store.list_ticks(s, watch), store.list_incidents(s, watch), store.list_alerts(s, watch)


def _done(ticks: list) -> list:
    return [t for t in ticks if (t.summary or {}).get("status") != store.TICK_RUNNING]


@pytest.mark.postgres
@pytest.mark.slow
def test_serve_on_a_server_ticks_alerts_drains_on_sigterm_and_serves_again(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'serve-store.sqlite'}"  # one machine: the embedded store
    with prefect_cluster(tmp_path, store_url=store_url) as c:
        watch, path = fast_watch(tmp_path, cadence=CADENCE, length=timedelta(minutes=3), lead=timedelta(seconds=10))
        ticks = watch.resolved_phases()[0].ticks()
        obs = outage_observations(watch, tmp_path / "obs.jsonl", ticks[2], timedelta(minutes=1))
        tag = watch_tag(watch.name)
        # scheduled for a work pool's workers first (none runs): serve replaces that deployment with its own and says so
        scheduled = subprocess.run(
            [sys.executable, "-m", "pollwatch.cli", "schedule", str(path), "--work-pool", "nobody"],
            env=c.env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert scheduled.returncode == 0, scheduled.stdout + scheduled.stderr
        [dep0] = c.deployments(tag)
        serve = c.start("serve-1", _serve_args(path, obs))

        def ready() -> bool:
            done, incidents, alerts = _store_state(store_url, watch.name)
            runs = {r["id"] for r in c.flow_runs(tag, ["COMPLETED"])}
            return len(runs & {t.flow_run_id for t in _done(done)}) >= 3 and bool(incidents) and bool(alerts)

        _wait("three ticks and the alert", ready, serve, lambda: c.log("serve-1"))
        # stop it while a tick is in flight: the tick finishes, nothing is cancelled or left running
        _wait("a tick in flight", lambda: bool(c.flow_runs(tag, list(IN_FLIGHT))), serve, lambda: c.log("serve-1"))
        os.kill(serve.pid, signal.SIGTERM)
        assert serve.wait(timeout=90) == 0, c.log("serve-1")
        runs = c.flow_runs(tag)
        assert not [r for r in runs if r["state_type"] in IN_FLIGHT + ("CANCELLED", "CRASHED", "FAILED")], runs
        ticks_done, incidents, alerts = _store_state(store_url, watch.name)
        assert ticks_done and ticks_done == _done(ticks_done)  # no claim left running
        assert {t.tick for t in ticks_done} <= set(ticks)
        assert [i.kind.value for i in incidents] == ["nationwide_outage"]
        assert [a.event for a in alerts] == ["start"] and alerts[0].state.value == "sent"
        spans = sorted((r["start_time"], r["end_time"]) for r in runs if r["state_type"] == "COMPLETED")
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # one tick of the watch at a time
        [dep] = c.deployments(tag)
        assert dep["paused"] and "stopped serving" in c.log("serve-1")  # nothing piles up while nothing serves it
        assert dep0["work_pool_name"] == "nobody" and dep["work_pool_name"] is None
        assert "was run by the workers of pool nobody" in c.log("serve-1", tail=10**7)

        # serving again: the same deployment and schedule, resumed, ticking; Ctrl-C (SIGINT to the group) drains too
        completed = len(c.flow_runs(tag, ["COMPLETED"]))
        again = c.start("serve-2", _serve_args(path, obs))
        _wait(
            "a tick of the second serve",
            lambda: len(c.flow_runs(tag, ["COMPLETED"])) > completed,
            again,
            lambda: c.log("serve-2"),
        )
        [dep2] = c.deployments(tag)
        assert dep2["id"] == dep["id"] and not dep2["paused"] and len(dep2["schedules"]) == len(dep["schedules"]) == 1
        assert dep2["global_concurrency_limit"]["limit"] == 1
        os.killpg(again.pid, signal.SIGINT)
        assert again.wait(timeout=90) == 0, c.log("serve-2")
        assert not c.flow_runs(tag, list(IN_FLIGHT))
        with store.session_scope(store_url) as s:
            assert [e.kind for e in audit.entries(s, kind=AUDIT_APPLY, watch=watch.name)] == [AUDIT_APPLY] * 3
            # one start, sent once; its end too once the data shows the outage over (within two native steps)
            assert [a.event for a in store.list_alerts(s, watch.name)] in (["start"], ["start", "end"])


@pytest.mark.slow
def test_serve_on_the_embedded_default_schedules_its_own_runs(tmp_path: Path) -> None:
    """No PREFECT_API_URL: the temporary local API has no scheduler service; serve must still tick."""
    store_url = f"sqlite:///{tmp_path / 'serve-store.sqlite'}"
    env = {
        k: v for k, v in env_for(tmp_path, "unused", store_url).items() if k != "PREFECT_API_DATABASE_CONNECTION_URL"
    }
    watch, path = fast_watch(tmp_path, cadence=CADENCE, length=timedelta(minutes=3), lead=timedelta(seconds=10))
    ticks = watch.resolved_phases()[0].ticks()
    obs = outage_observations(watch, tmp_path / "obs.jsonl", ticks[1], timedelta(minutes=1))
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        serve = subprocess.Popen(
            _serve_args(path, obs),
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:

        def ready() -> bool:
            done, incidents, alerts = _store_state(store_url, watch.name)
            return len(_done(done)) >= 2 and bool(incidents) and bool(alerts)

        _wait("two ticks and the alert", ready, serve, lambda: log.read_text(errors="replace")[-4000:])
        api = re.search(r"Starting temporary server on (http://127\.0\.0\.1:\d+)", log.read_text()).group(1)

        def completed_runs() -> set[str]:
            runs = httpx.post(
                f"{api}/api/flow_runs/filter",
                json={"deployments": {"tags": {"all_": [watch_tag(watch.name)]}}},
                timeout=10,
            ).json()
            return {r["id"] for r in runs if r["state_type"] == "COMPLETED"}

        ticked = {t.flow_run_id for t in _done(_store_state(store_url, watch.name)[0])}
        # a tick is done in the store a moment before its run reports Completed to Prefect's API
        _wait(
            "the ticks' runs to complete",
            lambda: ticked <= completed_runs(),
            serve,
            lambda: log.read_text(errors="replace")[-4000:],
        )
        assert ticked <= completed_runs()  # the runs are the served deployment's
        os.kill(serve.pid, signal.SIGTERM)
        assert serve.wait(timeout=90) == 0, log.read_text(errors="replace")[-4000:]
    finally:
        stop(serve)
    # the local API is gone with the process; its database stays in PREFECT_HOME
    with sqlite3.connect(tmp_path / "prefect-home" / "prefect.db") as db:
        states = [s for (s,) in db.execute("SELECT state_type FROM flow_run")]
    assert "COMPLETED" in states and not set(states) & set(IN_FLIGHT)
    ticks_done = _store_state(store_url, watch.name)[0]
    assert ticks_done == _done(ticks_done)


def test_serve_a_watch_whose_phases_are_over_exits_at_once() -> None:
    out = CliRunner().invoke(app, ["serve", str(KZ_WATCH)])
    assert out.exit_code == 0, out.output
    assert "no ticks left to serve" in out.output and "2019-06-22" in out.output
