"""Responder overrides: the CLI, the paused review flow, the audit entry, and the next alert showing the override."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pollwatch import audit, outbox, store
from pollwatch.alerts import build_alerts
from pollwatch.attribute import attribute
from pollwatch.classify import classify
from pollwatch.cli import app
from pollwatch.models import Cause
from tests.test_classify import anomaly, ev

T0 = datetime(2019, 6, 9, 14, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)


def _opened(watch):
    """A nationwide shutdown at polls close, classified, attributed, alerted and recorded as a tick would."""
    anoms = [anomaly(T0, asn=p.asn) for p in watch.providers]
    res = classify(watch, None, [T0], [ev(T0, "opened", a) for a in anoms])
    events = attribute(watch, res.events, {}, anoms)
    with store.session_scope() as s:
        store.save_incidents(s, [e.incident for e in events])
        outbox.enqueue_alerts(s, build_alerts(watch, events))
    return res, anoms, events[0].incident


def test_cli_override_is_kept_audited_and_announced(kz_watch):
    _, _, inc = _opened(kz_watch)
    assert inc.cause is Cause.government_directed
    result = CliRunner().invoke(
        app,
        [
            "override",
            inc.id[:8],
            "--cause",
            "power_outage",
            "--by",
            "alice@kz-desk",
            "--why",
            "KEGOC confirms a grid failure at 19:58",
            "--at",
            "2019-06-09T14:30:00Z",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"incident {inc.id}: cause power_outage set by alice@kz-desk (was government_directed" in result.output
    with store.session_scope() as s:
        stored = store.get_incident(s, inc.id)
        alerts = store.list_alerts(s, kz_watch.name, inc.id)
        entries = audit.entries(s, kind="override")
        assert audit.verify(s).ok
    assert stored.cause is Cause.power_outage and stored.cause_confidence == 1.0
    assert stored.override == {
        "cause": "power_outage",
        "by": "alice@kz-desk",
        "why": "KEGOC confirms a grid failure at 19:58",
        "at": "2019-06-09T14:30:00Z",
        "previous": {"cause": "government_directed", "confidence": inc.cause_confidence},
    }
    assert [a.event for a in alerts] == ["start", "update"]
    assert "set by alice@kz-desk: KEGOC confirms" in alerts[1].text
    assert "attribution changed from government_directed to power_outage by alice@kz-desk" in alerts[1].text
    assert [(e.subject, e.payload["who"], e.payload["changes"]["cause"]) for e in entries] == [
        (inc.id, "alice@kz-desk", ["government_directed", "power_outage"])
    ]


def test_cli_override_refuses_unknown_incident_and_missing_reason(kz_watch):
    _opened(kz_watch)
    runner = CliRunner()
    bad = runner.invoke(app, ["override", "nope-nope", "--cause", "technical", "--by", "bob", "--why", "x"])
    assert bad.exit_code == 1 and "no incident 'nope-nope'" in bad.output
    with store.session_scope() as s:
        inc_id = store.list_incidents(s)[0].id
    blank = runner.invoke(app, ["override", inc_id, "--cause", "technical", "--by", "bob", "--why", "  "])
    assert blank.exit_code == 2 and "needs who made it" in blank.output
    wrong = runner.invoke(app, ["override", inc_id, "--cause", "aliens", "--who", "bob", "--why", "x"])
    assert wrong.exit_code == 2 and "unknown cause 'aliens'" in wrong.output


def test_next_alert_for_the_incident_shows_the_override(kz_watch):
    from pollwatch.override import override_incident

    res, anoms, inc = _opened(kz_watch)
    after, queued = override_incident(
        inc.id, Cause.cable_cut, "carol", "KazTransCom reports a fibre cut", at=T0 + 20 * MIN
    )
    # the next tick: two networks recover, the grouper (which knows nothing of overrides) updates the incident
    tick = T0 + 40 * MIN
    closing = [ev(tick, "closed", a.model_copy(update={"end": T0 + 30 * MIN})) for a in anoms[:2]]
    nxt = classify(kz_watch, res.state, [tick], closing)
    with store.session_scope() as s:
        known = {inc.id: store.get_incident(s, inc.id)}
    events = attribute(kz_watch, nxt.events, known, anoms)
    (update,) = events
    assert update.incident.override["by"] == "carol" and update.incident.cause is Cause.cable_cut
    assert update.incident.cause_confidence == 1.0
    assert update.incident.version > after.version  # not mistaken for the override's own alert
    (alert,) = build_alerts(kz_watch, events)
    assert "cause: cable cut (confidence 100%) — set by carol: KazTransCom reports a fibre cut" in alert.text
    with store.session_scope() as s:
        added = outbox.enqueue_alerts(s, [alert])
    assert len(added) == 1 and added[0].idempotency_key != queued[0].idempotency_key


@pytest.mark.usefixtures("prefect_harness")
def test_review_flow_pauses_for_a_responder_then_records_the_answer(kz_watch):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.flow_runs import resume_flow_run

    from pollwatch.flows.override import review_attribution

    _, _, inc = _opened(kz_watch)
    result: dict = {}
    worker = threading.Thread(
        target=lambda: result.update(review_attribution(inc.id, timeout_seconds=120, poll_interval=1))
    )
    worker.start()
    run = None
    deadline = time.monotonic() + 90
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"review-{inc.id}"]))
            )
            run = next((r for r in runs if r.state and r.state.is_paused()), None)
            if run:
                break
            time.sleep(0.5)
    assert run is not None, "the review flow never paused for input"
    resume_flow_run(
        run.id, run_input={"cause": "government_directed", "by": "dana", "why": "ministry order published on gov.kz"}
    )
    worker.join(120)
    assert result == {
        "incident": inc.id,
        "cause": "government_directed",
        "by": "dana",
        "why": "ministry order published on gov.kz",
        "alerts": 1,
    }
    with store.session_scope() as s:
        stored = store.get_incident(s, inc.id)
        alerts = store.list_alerts(s, kz_watch.name, inc.id)
    assert stored.override["by"] == "dana" and stored.cause_confidence == 1.0
    assert "attribution confirmed by dana" in alerts[-1].text


@pytest.mark.usefixtures("prefect_harness")
def test_watch_tick_after_an_override_alerts_with_it(kz_watch, tmp_path: Path, capsys):
    from pollwatch.flows.watch_tick import watch_tick
    from pollwatch.jsonl import write_observations
    from pollwatch.override import override_incident
    from pollwatch.simulate import election_day_events, simulate
    from tests.conftest import KZ_WATCH

    (spec,) = [e for e in election_day_events(kz_watch) if e.kind.value == "nationwide_outage"]
    spec = spec.model_copy(update={"end": spec.start + 30 * MIN})
    sc = simulate(kz_watch, spec.start - timedelta(hours=26), spec.start + 2 * timedelta(hours=1), [spec], seed=5)
    obs = tmp_path / "obs.jsonl"
    write_observations(sc.observations, obs)
    assert watch_tick(str(KZ_WATCH), spec.start, str(obs))["incident_events"] == 1
    with store.session_scope() as s:
        (inc,) = store.list_incidents(s, kz_watch.name)
    override_incident(inc.id, Cause.power_outage, "erin", "grid operator confirms", at=spec.start + 10 * MIN)
    capsys.readouterr()
    later = watch_tick(str(KZ_WATCH), spec.start + 90 * MIN, str(obs))
    assert later["incident_events"] >= 1
    printed = capsys.readouterr().out
    assert "set by erin: grid operator confirms" in printed
    with store.session_scope() as s:
        final = store.get_incident(s, inc.id)
        alerts = store.list_alerts(s, kz_watch.name, inc.id)
    assert final.status == "resolved" and final.override["by"] == "erin" and final.cause is Cause.power_outage
    assert len({a.idempotency_key for a in alerts}) == len(alerts) and alerts[-1].event == "end"
    assert "set by erin: grid operator confirms" in alerts[-1].text  # the end alert, after the override's own update
    assert alerts[-1].payload["incident"]["override"]["by"] == "erin"
