"""`pollwatch schedule-all DIR` / `unschedule-all`: every watch of a directory as batched lanes of the watches-tick
flow on one work pool; its dry run, its input checks, and applying, re-applying with fewer lanes and removing
on the session's Prefect test server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pollwatch.cli import app
from tests.fakes.world_watches import write_world_watches

runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == code, (res.exit_code, res.output, res.exception)
    return res.output


@pytest.fixture
def world(tmp_path: Path) -> Path:
    directory = tmp_path / "watches"
    write_world_watches(directory, 3, cadence=timedelta(minutes=1))
    return directory


def test_dry_run_prints_the_lanes_and_touches_no_prefect(world, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing listens: any call would fail
    out = run("schedule-all", str(world), "--lanes", "2", "--pool", "analysis", "--dry-run")
    assert f"{world}: 3 watch(es), finest cadence 1m for 3" in out
    assert (
        "would deploy 2 lane(s) of flow watches-tick every 60 s on work pool analysis: "
        "watches-tick-world-lane-0, watches-tick-world-lane-1"
    ) in out
    assert "deployed" not in out and "prefect worker start" not in out
    # a watch whose phases are over is scheduled all the same, and said to have no ticks left
    out = run("schedule-all", str(Path(__file__).parents[2] / "playbooks" / "watches"), "--dry-run")
    assert "1 with no ticks left (phases ended): kz-2019-presidential" in out


def test_bad_input_is_named_and_nothing_is_scheduled(world, tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert "no such directory" in run("schedule-all", str(tmp_path / "missing"), code=2)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.yml").write_text("name: x\n")
    assert f"{empty}: no watch files (*.yaml) in it" in run("schedule-all", str(empty), code=2)
    assert "--lanes 0: at least 1" in run("schedule-all", str(world), "--lanes", "0", code=2)
    assert "--every 30: at least 60 seconds" in run("schedule-all", str(world), "--every", "30", code=2)
    out = run("schedule-all", str(world), "--every", "120", code=2)
    assert "phase heightened ticks every 1m, not a multiple of 2m" in out and "world-ad.yaml" in out
    assert "--name 'World 1'" in run("schedule-all", str(world), "--name", "World 1", code=2)

    broken = world / "world-ad.yaml"
    broken.write_text(broken.read_text().replace("cadence: 1m", "cadence: soon"))
    out = run("schedule-all", str(world), "--dry-run", code=2)
    assert "1 problem(s), nothing scheduled" in out and f"{broken}:" in out and "cadence" in out
    assert "would deploy" not in out

    broken.unlink()
    twin = world / "zz-copy.yaml"
    twin.write_text((world / "world-ae.yaml").read_text())
    out = run("schedule-all", str(world), "--dry-run", code=2)
    assert f"{twin}: watch world-ae is also the name of {world / 'world-ae.yaml'}" in out


def _lanes(name: str) -> dict:
    from prefect.client.orchestration import get_client

    from pollwatch.flows.scheduling import watches_deployments

    with get_client(sync_client=True) as client:
        return {d.name: d for d in watches_deployments(client, name)}


@pytest.mark.usefixtures("prefect_harness")
def test_apply_reapply_with_fewer_lanes_and_remove(tmp_path):
    directory = tmp_path / "watches"
    write_world_watches(directory, 2, cadence=timedelta(minutes=7))
    every = 420  # not a divisor of a day: the slots still start where the flow's slots do
    run("schedule-all", str(directory), "--name", "other", "--pool", "p", "--every", str(every))
    out = run("schedule-all", str(directory), "--lanes", "3", "--pool", "p", "--every", str(every))
    assert "created process work pool" not in out  # made by the first apply
    assert "deployed watches-tick-world-lane-0, watches-tick-world-lane-1, watches-tick-world-lane-2" in out
    assert "start workers (any number, on any machine with this project): prefect worker start --pool p" in out
    deps = _lanes("world")
    assert sorted(deps) == [f"watches-tick-world-lane-{i}" for i in range(3)]
    for i in range(3):
        d = deps[f"watches-tick-world-lane-{i}"]
        assert d.work_pool_name == "p" and d.entrypoint == "flows/watches_tick.py:watches_tick"
        assert d.parameters == {"watches": str(directory.resolve()), "every": every, "lane": i, "lanes": 3}
        [s] = d.schedules
        assert s.active and s.schedule.interval == timedelta(seconds=every)
        # runs at multiples of `every` since the epoch, the slot starts the flow rounds its run's time down to
        assert s.schedule.anchor_date.timestamp() % every == 0

    out = run("schedule-all", str(directory), "--lanes", "1", "--pool", "p", "--every", str(every))
    assert "removed lanes beyond 1: watches-tick-world-lane-1, watches-tick-world-lane-2" in out
    deps = _lanes("world")
    assert list(deps) == ["watches-tick-world-lane-0"]
    assert deps["watches-tick-world-lane-0"].parameters["lanes"] == 1

    assert run("unschedule-all") == "world: removed watches-tick-world-lane-0\n"
    assert _lanes("world") == {} and list(_lanes("other")) == ["watches-tick-other-lane-0"]
    assert "nothing (no lane deployments)" in run("unschedule-all")

    # every apply and the removal are in each watch's audit chain, as a watch's own schedule is
    from pollwatch import audit, store
    from pollwatch.playbook import load_watch
    from pollwatch.schedule import AUDIT_APPLY, AUDIT_BATCH_REMOVE

    for f in sorted(directory.glob("*.yaml")):
        name = load_watch(f).name
        with store.session_scope() as s:
            applied = audit.entries(s, kind=AUDIT_APPLY, watch=name)
            gone = audit.entries(s, kind=AUDIT_BATCH_REMOVE, watch=name)
        batches = [(e.payload["batch"]["name"], e.payload["batch"]["lanes"]) for e in applied]
        assert batches == [("other", 1), ("world", 3), ("world", 1)], batches
        assert applied[-1].payload["removed"] == ["watches-tick-world-lane-1", "watches-tick-world-lane-2"]
        assert [e.payload["deployments"] for e in applied[1:]] == [
            [{"name": f"watches-tick-world-lane-{i}"} for i in range(3)],
            [{"name": "watches-tick-world-lane-0"}],
        ]
        assert [(e.payload["batch"], e.payload["deployments"]) for e in gone] == [
            ("world", ["watches-tick-world-lane-0"])
        ]


def test_dry_run_counts_watches_per_cadence_finest_first(tmp_path: Path):
    """'finest cadence 10m (1), 1m (1), 5m (1)' was sorted as text and did not say what the numbers count."""
    directory = tmp_path / "mixed"
    paths = write_world_watches(directory, 3, cadence=timedelta(minutes=10))
    for path, cadence in zip(paths[1:], ("1m", "5m")):
        path.write_text(path.read_text().replace("  cadence: 10m\n", f"  cadence: {cadence}\n", 1))
    out = run("schedule-all", str(directory), "--every", "60", "--dry-run")
    assert "3 watch(es), finest cadence 1m for 1, 5m for 1, 10m for 1" in out
