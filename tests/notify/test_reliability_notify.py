"""Slack down, then back, through the notify stage: every alert delivered once, in order.

The alerts of a whole simulated election day (several incidents opening, updating, resolving) go
into the outbox; Slack (the real SlackTransport against the local fake Slack Web API) is
unreachable for three ticks, during which tasks.notify.deliver_pending runs as watch_tick does;
then Slack is back. What finally reaches Slack is each alert at most once (held updates are
folded into the next post by design), in the order of the outbox, and nothing stays pending.
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from pollwatch import outbox, store
from pollwatch.pipeline import analyse
from pollwatch.simulate import demo_range, election_day_events, simulate

pytestmark = pytest.mark.usefixtures("prefect_harness")
TOKEN = "xoxb-reliability-0000-TEST"


def test_slack_down_then_back_delivers_everything_once_in_order(kz_watch):
    from prefect import flow

    from pollwatch.notify import SlackTransport
    from pollwatch.tasks.notify import deliver_pending
    from tests.fakes.slack_api import FakeSlack

    w = kz_watch
    h0, day, end = demo_range(w)
    sc = simulate(w, h0, end, election_day_events(w), seed=3)
    out = analyse(w, None, w.tick_times(day, end), sc.observations)
    assert len(out.alerts) >= 8
    with store.session_scope() as s:
        outbox.enqueue_alerts(s, out.alerts)
        expected = [a.idempotency_key for a in store.pending_alerts(s, w.name, w.alerts.channel)]

    with FakeSlack(token=TOKEN) as fake:
        transport = SlackTransport(SecretStr(TOKEN), base_url=fake.base_url, timeout=0.5, pace=0.0)

        @flow(name="notify-ticks")
        def ticks(n: int) -> list[int]:
            return [len(deliver_pending(w, transport).sent) for _ in range(n)]

        fake.fail("*", "unreachable", times=None)
        assert ticks(3) == [0, 0, 0]  # down: nothing sent, nothing lost
        with store.session_scope() as s:
            assert [a.idempotency_key for a in store.pending_alerts(s, w.name, w.alerts.channel)] == expected
        fake.clear_faults()
        ticks(2)
        posted = [
            c.params["metadata"]["event_payload"]["idempotency_key"]
            for c in fake.calls_to("chat.postMessage")
            if c.fault is None
            and (c.params.get("metadata") or {}).get("event_payload", {}).get("idempotency_key") in expected
        ]

    assert posted and len(posted) == len(set(posted))  # once each
    assert posted == [k for k in expected if k in set(posted)]  # in the outbox's order
    with store.session_scope() as s:
        assert store.pending_alerts(s, w.name) == []
