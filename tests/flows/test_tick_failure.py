"""A tick that fails says so and can be rerun (real Prefect flow runs, on the session's test harness).

The flow run ends Failed, the operators get a notice (console here, the ops channel with Slack), the tick's claim is
released so the same tick runs again, and `pollwatch tick` exits non-zero when the tick failed or every source
failed. A completed tick rerun still changes nothing and sends nothing twice.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pollwatch import store
from pollwatch.cli import app
from pollwatch.models import iso

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _flow_run_state(run_id: str) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).state.type.value


def test_failed_tick_is_failed_noticed_released_and_reruns(nationwide_minutes, tmp_path: Path, capsys):
    from pollwatch.flows.watch_tick import watch_tick

    w, start, observations, path = nationwide_minutes
    broken = tmp_path / "obs.jsonl"
    broken.write_text(path.read_text() + "{not json\n")  # a truncated upload: the tick cannot read its input
    state = watch_tick(str(w.source_file), start, str(broken), return_state=True)
    assert state.is_failed()
    assert _flow_run_state(str(state.state_details.flow_run_id)) == "FAILED"  # what the Prefect UI shows
    out = capsys.readouterr().out
    # console ops
    assert f"tick {iso(start)} of {w.name} failed" in out and f"pollwatch tick {w.name} --at {iso(start)}" in out
    with store.session_scope() as s:
        assert store.list_ticks(s, w.name) == []  # the claim is gone: nothing says "running"
        notices = [n for n in store.list_notices(s, w.name) if n.source == "watch-tick"]
        ops = [a for a in store.list_alerts(s, w.name) if a.destination == w.alerts.ops_channel]
    assert [n.level.value for n in notices] == ["error"] and "FormatError" in notices[0].message
    assert any("failed" in a.text for a in ops)  # through the outbox: Slack's ops channel when configured

    broken.write_text(path.read_text())  # fixed: the same tick runs, it is not "skipped"
    result = watch_tick(str(w.source_file), start, str(broken))
    assert result["skipped"] is False and result["incident_events"] >= 1
    again = watch_tick(str(w.source_file), start, str(broken))  # a completed tick stays idempotent
    assert again["skipped"] is True
    with store.session_scope() as s:
        ticks = store.list_ticks(s, w.name)
        starts = [a for a in store.list_alerts(s, w.name) if a.event == "start"]
    assert len(ticks) == 1 and ticks[0].summary.get("status") != "running"
    assert len(starts) == 1


def test_cli_tick_exit_codes(nationwide_minutes, tmp_path: Path):
    w, start, _, path = nationwide_minutes
    broken = tmp_path / "obs.jsonl"
    broken.write_text("{not json\n")
    runner = CliRunner()
    failed = runner.invoke(app, ["tick", str(w.source_file), "--at", iso(start), "--observations", str(broken)])
    assert failed.exit_code == 1, failed.output
    assert "the tick failed (FormatError" in failed.stderr and "run the same command again" in failed.stderr
    assert "Traceback" not in failed.output
    broken.write_text(path.read_text())
    rerun = runner.invoke(app, ["tick", str(w.source_file), "--at", iso(start), "--observations", str(broken)])
    assert rerun.exit_code == 0, rerun.output
    assert json.loads(rerun.stdout.strip().splitlines()[-1])["skipped"] is False


def test_cli_tick_exits_non_zero_when_every_source_failed(tmp_path: Path, kz_watch):
    with socket.socket() as sock:  # a port nothing listens on: every request is refused at once
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    f = tmp_path / "kz-dead-sources.yaml"
    doc = yaml.safe_load(Path(kz_watch.source_file).read_text())
    doc.update(
        name="kz-dead-sources",
        template=str(Path(kz_watch.source_file).parent.parent / "rapid-response.yaml"),
        sources={name: {"base_url": dead, "retries": 0, "timeout": "2s"} for name in ("ioda", "ooni", "ripestat")},
    )
    f.write_text(yaml.safe_dump(doc))
    tick = kz_watch.milestone_times()["polls_open"]
    result = CliRunner().invoke(app, ["tick", str(f), "--at", iso(tick)])
    assert result.exit_code == 3, result.output
    assert "every source failed this tick (ioda, ooni, ripestat)" in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["skipped"] is False and summary["incident_events"] == 0  # missing data is no outage
