"""Slack delivery figures: an hour-long Slack outage drained in order, pacing, chart and render cost.

Runs the real slack_sdk client against the local fake Slack (tests/fakes/slack_api.py) with a
throw-away store. Prints its figures and one RESULT line per goal.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ["POLLWATCH_HOME"] = tempfile.mkdtemp(prefix="pollwatch-bench-slack-")
os.environ["POLLWATCH_DATABASE_URL"] = f"sqlite:///{os.environ['POLLWATCH_HOME']}/pollwatch.sqlite"

from pydantic import SecretStr  # noqa: E402

from pollwatch import outbox, store  # noqa: E402
from pollwatch.charts import incident_chart  # noqa: E402
from pollwatch.notify import SlackTransport, deliver_outbox, render  # noqa: E402
from pollwatch.playbook import load_watch  # noqa: E402
from tests.fakes.slack_api import FakeSlack  # noqa: E402
from tests.fakes.slack_scenarios import T0, alerts_for, anomalies_and_observations, nationwide, service_block, story  # noqa: E402

TOKEN = "xoxb-bench-token"


def result(name: str, figure: float | int, goal: str, met: bool) -> None:
    print(f"RESULT name={name} figure={figure} goal={goal} met={'yes' if met else 'no'}")


def main() -> None:
    logging.disable(logging.ERROR)  # the outage phase logs every failed attempt; the figures are what matter here
    watch = load_watch(REPO / "playbooks" / "watches" / "kz-2019-presidential.yaml")
    watch = watch.model_copy(update={"alerts": watch.alerts.model_copy(update={"max_updates_per_hour": 60})})

    # 1. an hour without Slack: 4 incidents evolving over 12 five-minute ticks, then Slack is back
    incidents = [nationwide(watch, inc_id=f"bench-nat-{i}") for i in range(2)] + [
        service_block(watch, inc_id=f"bench-svc-{i}") for i in range(2)
    ]
    events = []
    for k, inc in enumerate(incidents):
        shifted = inc.model_copy(
            update={
                "start": T0 + timedelta(minutes=k),
                "detected_at": T0 + timedelta(minutes=5 + k),
                "updated_at": T0 + timedelta(minutes=5 + k),
            }
        )
        events += story(shifted, updates=8, step=timedelta(minutes=5))
    alerts = sorted(alerts_for(watch, events), key=lambda a: (a.created_at, a.sequence, a.id))
    with FakeSlack(token=TOKEN) as fake:
        t = SlackTransport(SecretStr(TOKEN), base_url=fake.base_url, timeout=1.0, pace=0.0)
        fake.fail("*", "unreachable", times=None)
        for tick in range(12):
            now = T0 + timedelta(minutes=5 * (tick + 1))
            with store.session_scope() as s:
                outbox.enqueue_alerts(s, [a for a in alerts if a.created_at <= now])
            deliver_outbox(watch, t, chart=lambda *a: None, retry_delays=(0.01,))
        with store.session_scope() as s:
            outbox.enqueue_alerts(s, alerts)
        fake.clear_faults()
        calls_before = len(fake.calls)
        t0 = time.perf_counter()
        report = deliver_outbox(watch, t, chart=lambda *a: None, retry_delays=(0.01,))
        drain = time.perf_counter() - t0
        posted = [
            c.params["metadata"]["event_payload"]["idempotency_key"]
            for c in fake.calls_to("chat.postMessage")
            if c.fault is None and c.params.get("channel") == fake.channel_id("pollwatch-kz")
        ]
        keys = [a.idempotency_key for a in alerts]
        dup = len(posted) - len(set(posted))
        lost = len(set(keys) - set(posted))
        in_order = posted == keys
        roots = len(fake.roots("pollwatch-kz"))
        ops = len(fake.roots("pollwatch-ops"))
        api_calls = len(fake.calls) - calls_before
    print(f"outage backlog: {len(alerts)} alerts for {len(incidents)} incidents after 12 failed ticks")
    print(f"  drained in {drain:.2f} s without pacing; {api_calls} API calls ({api_calls / len(alerts):.1f} per alert)")
    print(
        f"  duplicates {dup}, lost {lost}, in order {in_order}, roots {roots}, ops notices {ops}, waiting "
        f"{report.waiting}"
    )
    print(
        f"  with 1 msg/channel/s pacing the same backlog takes about {report.posted + report.edited} s (posts + edits)"
    )
    result("slack_backlog_duplicates", dup, "0", dup == 0)
    result("slack_backlog_lost", lost, "0", lost == 0)
    result("slack_backlog_in_order", int(in_order), "1", in_order)
    result("slack_roots_per_incident", roots / len(incidents), "1", roots == len(incidents))

    # 2. pacing: the highest rate any channel saw in a 1 s window
    store.dispose_engines()
    with FakeSlack(token=TOKEN) as fake:
        t = SlackTransport(SecretStr(TOKEN), base_url=fake.base_url, timeout=1.0, pace=1.0)
        with store.session_scope() as s:
            outbox.enqueue_alerts(
                s, alerts_for(watch, story(nationwide(watch, inc_id="bench-pace"), updates=2, end=False))
            )
        deliver_outbox(watch, t, chart=lambda *a: None)
        writes = [c.at for c in fake.calls if c.method in ("chat.postMessage", "chat.update")]
        gaps = [b - a for a, b in zip(writes, writes[1:])]
    min_gap = min(gaps) if gaps else float("inf")
    print(f"pacing: {len(writes)} writes to one channel, smallest gap {min_gap:.3f} s")
    result("slack_min_gap_per_channel_s", round(min_gap, 3), ">=0.95", min_gap >= 0.95)

    # 3. rendering cost
    inc = nationwide(watch)
    anomalies, obs = anomalies_and_observations(watch, inc)
    incident_chart(watch, inc, anomalies, obs)  # warm-up (imports)
    t0 = time.perf_counter()
    png = incident_chart(watch, inc, anomalies, obs)
    chart_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    for _ in range(100):
        render.root_message(watch, inc, key="k", anomalies=anomalies)
    root_ms = (time.perf_counter() - t0) * 10
    print(f"chart: {chart_ms:.0f} ms, {len(png or b'') / 1024:.0f} KiB; root message: {root_ms:.2f} ms")
    result("slack_chart_ms", round(chart_ms), "<2000", chart_ms < 2000)


if __name__ == "__main__":
    main()
