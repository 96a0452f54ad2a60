"""Two ticks of one watch started at once: one runs, the other waits or is skipped, and the result
equals a single run (one tick row, one incident, one alert delivered once, no failed run).

The race is made certain, not hoped for: the first tick is held inside its detect stage until the
second one has finished.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from pollwatch import store
from tests.conftest import KZ_WATCH

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def scenario(nationwide_minutes):
    w, start, _, path = nationwide_minutes
    return w, start, path


def test_two_ticks_of_one_watch_at_once_equal_a_single_run(scenario, monkeypatch, capsys):
    import pollwatch.tasks.detect as detect_stage
    from pollwatch.flows.watch_tick import watch_tick

    w, start, obs = scenario
    assert watch_tick(str(KZ_WATCH), start - timedelta(minutes=5), str(obs))["skipped"] is False
    capsys.readouterr()

    real = detect_stage.detect
    first_inside, second_done = threading.Event(), threading.Event()
    entered: list[str] = []

    def held(*a, **k):
        entered.append(threading.current_thread().name)
        if len(entered) == 1:
            first_inside.set()
            second_done.wait(120)  # hold the first tick here until the second one has finished
        return real(*a, **k)

    monkeypatch.setattr(detect_stage, "detect", held)
    results: dict[str, object] = {}

    def run(name: str) -> None:
        try:
            results[name] = watch_tick(str(KZ_WATCH), start, str(obs))
        except BaseException as exc:  # noqa: BLE001 - a failed run is a finding, reported below
            results[name] = exc

    first = threading.Thread(target=run, args=("first",), name="first")
    first.start()
    assert first_inside.wait(180), "the first tick never reached detect"
    run("second")  # the same tick of the same watch, while the first one is mid-way
    second_done.set()
    first.join(300)

    failures = {k: v for k, v in results.items() if isinstance(v, BaseException)}
    assert not failures, f"a concurrent tick failed: {failures}"
    ran = [k for k, v in results.items() if not v["skipped"]]
    assert len(ran) == 1, results
    assert capsys.readouterr().out.count("ONGOING: Nationwide internet outage") == 1
    with store.session_scope() as s:
        ticks = store.list_ticks(s, w.name)
        assert [t.tick for t in ticks] == [start - timedelta(minutes=5), start]
        assert all((t.summary or {}).get("status") != store.TICK_RUNNING for t in ticks)
        assert [i.kind.value for i in store.list_incidents(s, w.name)] == ["nationwide_outage"]
        # notices: data gaps, ops channel
        incident_alerts = [a for a in store.list_alerts(s, w.name) if a.event != "notice"]
        assert [(a.event, a.state.value) for a in incident_alerts] == [("start", "sent")]


def test_a_tick_claim_is_exclusive_until_done_or_stale():
    from datetime import datetime, timezone

    t = datetime(2019, 6, 9, 5, 0, tzinfo=timezone.utc)
    with store.session_scope() as s:
        assert store.claim_tick(s, "w", t, "run-1") is True
    with store.session_scope() as s:
        assert store.claim_tick(s, "w", t, "run-2") is False  # held by run-1
        assert store.tick_done(s, "w", t) is True  # nobody else starts it
        assert store.claim_tick(s, "w", t, "run-1") is True  # run-1 retrying (a Prefect retry keeps its id)
    with store.session_scope() as s:
        assert store.claim_tick(s, "w", t, "run-3", stale_after=timedelta(0)) is True  # run-1 died: taken over
    with store.session_scope() as s:
        store.mark_tick_done(s, "w", t, "run-3", {"alerts": 1})
    with store.session_scope() as s:
        assert store.claim_tick(s, "w", t, "run-3", stale_after=timedelta(0)) is False  # done is done
        rows = store.list_ticks(s, "w")
    assert [(r.flow_run_id, r.summary) for r in rows] == [("run-3", {"alerts": 1})]
