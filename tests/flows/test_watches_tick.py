"""Many watches ticked in one flow run (flows/watches_tick.py), on the session's Prefect test harness and the fake
observatories: each watch keeps its own tick, claim, state, incidents, alerts and run record; the batch asks the
observatories far less than ticking the watches one by one; a watch that fails is that watch's failure only."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from tests.fakes.observatories import observatories
from tests.fakes.world_watches import write_world_watches

from pollwatch import audit, store
from pollwatch.models import iso
from pollwatch.playbook import load_watch

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def world(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("POLLWATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("POLLWATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'store.sqlite'}")
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    paths = write_world_watches(tmp_path / "watches", 4, start=now - timedelta(hours=1))
    with observatories() as obs:
        obs.ioda.noise = 0.04
        yield [load_watch(p) for p in paths], tmp_path / "watches", now, obs


def test_a_batch_ticks_each_watch_on_its_own_record_and_asks_less(world):
    from pollwatch.flows.watches_tick import watches_tick
    from pollwatch.flows.watch_tick import watch_tick

    watches, directory, now, obs = world
    dropped = watches[1]
    obs.ioda.drop(dropped.country, now - timedelta(minutes=25), now + timedelta(hours=1), 0.05)
    state = watches_tick(str(directory), now, base_urls=obs.base_urls(), return_state=True)
    result = state.result()
    run_id = str(state.state_details.flow_run_id)
    assert result["due"] == result["ticked"] == 4 and result["failed"] == 0
    batched = len(obs.ioda.requests)
    with store.session_scope() as s:
        for w in watches:
            [row] = store.list_ticks(s, w.name)
            assert row.tick == now and row.flow_run_id == run_id and row.summary["observations"] > 0
            runs = [r for r in audit.runs(s, watch=w.name) if r["flow"] == "watches-tick"]
            assert [(r["state"], r["parameters"]["tick"]) for r in runs] == [("Completed", iso(now))]
        incidents = {w.name: store.list_incidents(s, w.name) for w in watches}
        starts = {w.name: [a for a in store.list_alerts(s, w.name) if a.event == "start"] for w in watches}
    assert [i.kind.value for i in incidents[dropped.name]] == ["nationwide_outage"]
    assert all(not incidents[w.name] for w in watches if w is not dropped)
    assert len(starts[dropped.name]) == 1 and all(not starts[w.name] for w in watches if w is not dropped)

    again = watches_tick(str(directory), now, base_urls=obs.base_urls())  # the same slot: nothing new, nothing sent
    assert again["ticked"] == 0 and len(obs.ioda.requests) == batched

    # the same first tick of each watch one by one, a minute later, on a fresh state: what batching saves
    with store.session_scope() as s:
        for w in watches:
            store.save_watch_state(s, w.name, {}, now - timedelta(hours=3))
    before = len(obs.ioda.requests)
    for w in watches:
        watch_tick(str(w.source_file), now + timedelta(minutes=1), base_urls=obs.base_urls())
    assert len(obs.ioda.requests) - before >= 2 * batched


def test_a_failing_watch_fails_alone_and_can_tick_again(world, monkeypatch):
    import pollwatch.tasks.detect
    from pollwatch.flows.watches_tick import watches_tick

    watches, directory, now, obs = world
    broken = watches[2]
    real = pollwatch.tasks.detect.detect

    def detect(watch, *args, **kwargs):
        if watch.name == broken.name:
            raise RuntimeError("detector state unreadable")
        return real(watch, *args, **kwargs)

    monkeypatch.setattr(pollwatch.tasks.detect, "detect", detect)
    result = watches_tick(str(directory), now, base_urls=obs.base_urls())
    assert (result["ticked"], result["failed"]) == (3, 1)
    with store.session_scope() as s:
        assert store.list_ticks(s, broken.name) == []  # its claim released: the tick can run again
        notices = [n for n in store.list_notices(s, broken.name) if n.source == "watch-tick" and n.level == "error"]
        assert notices and "detector state unreadable" in notices[0].message
        assert all(len(store.list_ticks(s, w.name)) == 1 for w in watches if w is not broken)
    monkeypatch.setattr(pollwatch.tasks.detect, "detect", real)
    rerun = watches_tick(str(directory), now, base_urls=obs.base_urls())
    assert (rerun["ticked"], rerun["failed"]) == (1, 0)
