"""Routing in delivery: thresholds, per-provider opt-in, the hourly update limit with batching, escalation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_scenarios import alerts_for, nationwide, network_outage, service_block, story
from pollwatch import outbox, store
from pollwatch.notify import SlackTransport, deliver_outbox

TOKEN = "xoxb-canary-7777-8888-DO-NOT-LEAK"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(token=TOKEN) as f:
        yield f


def run(watch, fake, events):
    with store.session_scope() as s:
        outbox.enqueue_alerts(s, alerts_for(watch, events))
    t = SlackTransport(SecretStr(TOKEN), base_url=fake.base_url, timeout=0.5, pace=0.0)
    return deliver_outbox(watch, t, chart=lambda *a: None, retry_delays=(0.01,))


def refs():
    with store.session_scope() as s:
        return [r.remote_ref for r in store.alert_rows(s)]


def with_routing(watch, **kw):
    return watch.model_copy(update={"alerts": watch.alerts.model_copy(update=kw)})


def test_update_limit_holds_and_batches_the_rest(kz_watch, fake):
    watch = with_routing(kz_watch, max_updates_per_hour=2)
    report = run(watch, fake, story(nationwide(watch), updates=5))
    assert report.ok and report.held == 3
    root = fake.roots("pollwatch-kz")[0]
    replies = fake.thread("pollwatch-kz", root["ts"])
    assert [m["text"].split(":")[0] for m in replies] == ["Update", "Update", "Recovered"]
    assert (
        "Also changed before the end: scope grew: region KZ-R2 | scope grew: region KZ-R3 | scope grew: region KZ-R4"
        in replies[-1]["blocks"][1]["elements"][0]["text"]
    )
    assert root["edits"] == 6  # the root follows every change, held or not
    assert "KZ-R4" in str(root["blocks"])
    assert sum(r.startswith("held:") for r in refs()) == 3


def test_escalation_to_critical_is_posted_with_the_mention(kz_watch, fake):
    watch = with_routing(kz_watch, max_updates_per_hour=1)
    run(watch, fake, story(service_block(watch), updates=4, end=False))  # severity 2000 x 1.3^n crosses 5000 at n=4
    root = fake.roots("pollwatch-kz")[0]
    assert "<!here>" not in root["text"]
    replies = fake.thread("pollwatch-kz", root["ts"])
    assert len(replies) == 2
    assert "<!here>" not in replies[0]["text"]
    assert replies[1]["text"].startswith("<!here> Update") and "reached the critical level" in replies[1]["text"]
    assert replies[1]["subtype"] == "thread_broadcast"


def test_below_min_severity_waits_until_the_incident_matters(kz_watch, fake):
    watch = with_routing(kz_watch, min_severity=3000)
    report = run(watch, fake, story(service_block(watch), updates=3))  # 2000, 2600, 3380, 4394, end
    assert report.skipped == 2
    r = refs()
    assert r[0].startswith("skipped:severity 2,000 below min_severity 3,000") and r[1].startswith("skipped:")
    roots = fake.roots("pollwatch-kz")
    # the thread opens with the first update that counts
    assert len(roots) == 1 and r[2] == f"slack:C0KZ0ALERT:{roots[0]['ts']}"
    assert [m["text"].split(":")[0] for m in fake.thread("pollwatch-kz", roots[0]["ts"])] == ["Update", "Unblocked"]


@pytest.mark.parametrize("opt_in", [False, True])
def test_per_provider_alerts_are_opt_in(kz_watch, fake, opt_in):
    watch = with_routing(kz_watch, per_provider_asns=[48503] if opt_in else [])
    report = run(watch, fake, story(network_outage(watch), updates=1))
    roots = fake.roots("pollwatch-kz")
    if opt_in:
        assert len(roots) == 1 and "Tele2 Kazakhstan (AS48503)" in roots[0]["text"]
    else:
        assert roots == [] and report.skipped == 3 and all("AS48503" in r for r in refs())
