"""The worker killed with SIGKILL in the middle of a tick: the next tick completes the work.

A tick runs in a subprocess against the session's Prefect API and the test's store. A stage is
slowed down in that subprocess (it writes a marker file, then sleeps); once the marker appears the
test kills the process with SIGKILL. The next tick, run normally, must leave every observation
stored, the incident recorded once and its alert delivered once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from pollwatch import store
from pollwatch.jsonl import read_observations
from tests.conftest import KZ_WATCH, REPO

pytestmark = pytest.mark.usefixtures("prefect_harness")

STALL = {
    # kill after the observations were recorded, while the detector runs
    "detect": """
import pollwatch.tasks.detect as stage
real = stage.detect
def stalled(*a, **k):
    Path(MARKER).write_text("detect")
    time.sleep(600)
    return real(*a, **k)
stage.detect = stalled
""",
    # kill after the alert went into the outbox, while it is being delivered (before anything is recorded as done)
    "deliver": """
import pollwatch.tasks.notify as stage
from pollwatch.notify import ConsoleTransport
class Stalled(ConsoleTransport):
    def post(self, channel, msg, **kw):
        if "Nationwide" in msg.plain():  # the incident's alert, not an operator notice
            Path(MARKER).write_text("deliver")
            time.sleep(600)
        return super().post(channel, msg, **kw)
stage.default_transport = lambda: Stalled()
""",
}

RUNNER = """
import sys, time
from datetime import datetime
from pathlib import Path
MARKER = sys.argv[4]
{stall}
from pollwatch.flows.watch_tick import watch_tick
watch_tick(sys.argv[1], datetime.fromisoformat(sys.argv[2]), sys.argv[3])
"""


def _incident_alerts(alerts: list) -> list:
    return [a for a in alerts if a.event != "notice"]  # operator notices (data gaps) go to the ops channel


@pytest.fixture(scope="module")
def scenario(nationwide_minutes):
    w, start, _, path = nationwide_minutes
    return w, start, path


def _kill_mid_tick(stage: str, tick, obs: Path, tmp_path: Path) -> str:
    from prefect.settings import PREFECT_API_URL

    marker = tmp_path / f"stalled-{stage}"
    script = tmp_path / f"tick_{stage}.py"
    script.write_text(RUNNER.format(stall=STALL[stage]))
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(KZ_WATCH), tick.isoformat(), str(obs), str(marker)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 240
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"the tick ended before reaching {stage}: {proc.stdout.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the tick never reached {stage}")
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    return marker.read_text()


def test_sigkill_mid_tick_then_the_next_tick_completes_the_work(scenario, tmp_path, capsys):
    from pollwatch.flows.watch_tick import watch_tick

    w, start, obs = scenario
    assert watch_tick(str(KZ_WATCH), start - timedelta(minutes=5), str(obs))["skipped"] is False
    capsys.readouterr()

    def done_ticks() -> list:
        with store.session_scope() as s:
            return [
                t.tick for t in store.list_ticks(s, w.name) if (t.summary or {}).get("status") != store.TICK_RUNNING
            ]

    # the tick where the outage begins is killed while detecting ...
    _kill_mid_tick("detect", start, obs, tmp_path)
    assert done_ticks() == [start - timedelta(minutes=5)]  # the killed tick is not done
    with store.session_scope() as s:
        # decided nothing
        assert store.list_incidents(s, w.name) == [] and _incident_alerts(store.list_alerts(s, w.name)) == []
    # ... and the next one while delivering the alert (it caught up on the killed tick's data)
    _kill_mid_tick("deliver", start + timedelta(minutes=5), obs, tmp_path)
    assert done_ticks() == [start - timedelta(minutes=5)]
    with store.session_scope() as s:
        waiting = _incident_alerts(store.list_alerts(s, w.name))
        # in the outbox
        assert [(a.event, a.state.value) for a in waiting] != [] and all(a.state.value != "sent" for a in waiting)
        assert store.list_incidents(s, w.name) == []  # the incident itself was never recorded

    last = start + timedelta(minutes=10)
    assert watch_tick(str(KZ_WATCH), last, str(obs))["skipped"] is False
    assert capsys.readouterr().out.count("ONGOING: Nationwide internet outage") == 1

    # running the killed ticks again sends nothing again (they are skipped or find nothing new)
    for t in (start, start + timedelta(minutes=5)):
        watch_tick(str(KZ_WATCH), t, str(obs))
    assert "Nationwide internet outage" not in capsys.readouterr().out

    with store.session_scope() as s:
        incidents = store.list_incidents(s, w.name)
        alerts = _incident_alerts(store.list_alerts(s, w.name))
        stored = {(o.source, o.signal, o.entity_key, o.time) for o in store.query_observations(s, country="KZ")}
    assert [i.kind.value for i in incidents] == ["nationwide_outage"]
    assert [(a.event, a.state.value) for a in alerts] == [("start", "sent")]
    assert last in done_ticks()
    in_file = {(o.source, o.signal, o.entity_key, o.time) for o in read_observations(obs) if o.time <= last}
    first_since = start - timedelta(minutes=5) - max(s.window for s in w.signals.values())
    assert {k for k in in_file if k[3] >= first_since} <= stored  # no observation lost
