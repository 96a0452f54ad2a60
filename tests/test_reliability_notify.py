"""Alerts while the alert channel is down, then back: every alert delivered once, in order.

The alerts of a whole simulated election day (several incidents opening, updating, resolving) go
into the outbox; the sink the notify stage uses raises for the first deliveries of every tick for
a while (the channel is down), then recovers. tasks.notify.deliver_pending runs once per tick, as
watch_tick does. What finally arrives is each alert exactly once, in the order they were created.
"""

from __future__ import annotations

import pytest

from pollwatch import store
from pollwatch.models import AlertState
from pollwatch.pipeline import analyse
from pollwatch.simulate import demo_range, election_day_events, simulate

pytestmark = pytest.mark.usefixtures("prefect_harness")


class FlakySink:
    """Down for the first `down` delivery attempts, then up; remembers what it delivered."""

    def __init__(self, down: int):
        self.down = down
        self.attempts = 0
        self.delivered: list[str] = []

    def deliver(self, alert):
        self.attempts += 1
        if self.attempts <= self.down:
            raise ConnectionError("channel unreachable")
        self.delivered.append(alert.id)
        return AlertState.sent, f"flaky:{alert.id}"


def test_channel_down_then_back_delivers_everything_once_in_order(kz_watch):
    from prefect import flow

    from tasks.notify import deliver_pending

    w = kz_watch
    h0, day, end = demo_range(w)
    sc = simulate(w, h0, end, election_day_events(w), seed=3)
    out = analyse(w, None, w.tick_times(day, end), sc.observations)
    assert len(out.alerts) >= 8
    with store.session_scope() as s:
        store.enqueue_alerts(s, out.alerts)
        expected = [a.id for a in store.pending_alerts(s, w.name, w.alerts.channel)]
    sink = FlakySink(down=6)

    @flow(name="deliver-ticks")
    def ticks(n: int) -> list[int]:
        return [deliver_pending(w.name, w.alerts.channel, sink) for _ in range(n)]

    sent_per_tick = ticks(len(expected) + 8)
    assert sent_per_tick[:6] == [0] * 6  # down: each tick stops at the oldest alert, nothing overtakes it
    assert sink.delivered == expected  # back: everything, once, in creation order
    with store.session_scope() as s:
        assert store.pending_alerts(s, w.name) == []
        alerts = store.list_alerts(s, w.name)
    first = next(a for a in alerts if a.id == expected[0])
    assert first.attempts == 7 and all(a.state is AlertState.sent for a in alerts)
