"""Responders' Slack actions: how fast a button press is acknowledged, recorded and shown in the thread.

The real slack_sdk Socket Mode client against the local fakes (tests/fakes/slack_socket.py,
tests/fakes/slack_api.py) with a throw-away SQLite store. Presses Acknowledge and Confirm cause
on 20 incidents' root messages (each a new action) and then each button again (repeats), and
prints, per press: the time to Slack's acknowledgement (Slack wants it within 3 s), to the
incident changed in the store, and to the reply in the thread. One RESULT line per goal.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ["POLLWATCH_HOME"] = tempfile.mkdtemp(prefix="pollwatch-bench-actions-")
os.environ["POLLWATCH_DATABASE_URL"] = f"sqlite:///{os.environ['POLLWATCH_HOME']}/pollwatch.sqlite"

from pydantic import SecretStr  # noqa: E402

from pollwatch import audit, outbox, store  # noqa: E402
from pollwatch.notify import SlackTransport, deliver_outbox  # noqa: E402
from pollwatch.notify.interact import Interactions, SocketModeListener  # noqa: E402
from pollwatch.playbook import load_watch  # noqa: E402
from tests.fakes.slack_api import FakeSlack  # noqa: E402
from tests.fakes.slack_scenarios import alerts_for, nationwide, story  # noqa: E402
from tests.fakes.slack_socket import FakeSocketMode, wait_for  # noqa: E402

TOKEN = "xoxb-bench-token"
LEAD = "U0LEAD0001"
INCIDENTS = 20


def result(name: str, figure: float | int, goal: str, met: bool) -> None:
    print(f"RESULT name={name} figure={figure} goal={goal} met={'yes' if met else 'no'}")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    logging.disable(logging.WARNING)
    base = load_watch(REPO / "playbooks" / "watches" / "kz-2019-presidential.yaml")
    watch = base.model_copy(
        update={
            "alerts": base.alerts.model_copy(update={"responders": [LEAD], "chart": False, "max_updates_per_hour": 100})
        }
    )
    with FakeSocketMode() as sock, FakeSlack(token=TOKEN) as fake:
        fake.socket_url = lambda: sock.url
        transport = SlackTransport(SecretStr(TOKEN), base_url=fake.base_url, pace=0.0)
        incs = [nationwide(watch, inc_id=f"kz-bench-{i:02d}") for i in range(INCIDENTS)]
        with store.session_scope() as s:
            store.save_incidents(s, incs)
            for inc in incs:
                outbox.enqueue_alerts(s, alerts_for(watch, story(inc, updates=0, end=False)))
        deliver_outbox(watch, transport)
        roots = {r["metadata"]["event_payload"]["incident_id"]: r["ts"] for r in fake.roots("pollwatch-kz")}
        interactions = Interactions(SlackTransport(SecretStr(TOKEN), base_url=fake.base_url, pace=0.0), watch=watch)
        with SocketModeListener(interactions, SecretStr(fake.app_token), ping_interval=30):
            sock.wait_connected()
            acks, stored, shown = [], [], []
            for inc in incs:
                for action, check in (("acknowledge", lambda i: i.acknowledged_by), ("confirm", lambda i: i.override)):
                    before = len(fake.thread("pollwatch-kz", roots[inc.id]))
                    t0 = time.perf_counter()
                    sock.interact(fake.block_actions("pollwatch-kz", roots[inc.id], f"pollwatch:{action}", user=LEAD))
                    acks.append(time.perf_counter() - t0)

                    def changed(inc_id: str = inc.id, check=check) -> bool:
                        with store.session_scope() as s:
                            return bool(check(store.get_incident(s, inc_id)))

                    wait_for(changed, timeout=30, interval=0.005)
                    stored.append(time.perf_counter() - t0)
                    wait_for(
                        lambda: len(fake.thread("pollwatch-kz", roots[inc.id])) > before, timeout=30, interval=0.005
                    )
                    shown.append(time.perf_counter() - t0)
            entries_before = len(audit_entries())
            replies_before = sum(len(fake.thread("pollwatch-kz", ts)) for ts in roots.values())
            t0 = time.perf_counter()
            for inc in incs:  # every button pressed again: nothing may change
                for action in ("acknowledge", "confirm"):
                    sock.interact(fake.block_actions("pollwatch-kz", roots[inc.id], f"pollwatch:{action}", user=LEAD))
            wait_for(lambda: len(fake.ephemerals) >= 4 * INCIDENTS, timeout=60, interval=0.01)
            repeats = time.perf_counter() - t0
            extra_entries = len(audit_entries()) - entries_before
            extra_replies = sum(len(fake.thread("pollwatch-kz", ts)) for ts in roots.values()) - replies_before

    n = len(acks)
    print(f"{n} presses on {INCIDENTS} incidents (acknowledge, confirm cause), then the same {n} again")
    print(
        f"to Slack's acknowledgement: median {statistics.median(acks) * 1000:.1f} ms, p95 "
        f"{pct(acks, 0.95) * 1000:.1f} ms, "
        f"max {max(acks) * 1000:.1f} ms"
    )
    print(
        f"to the incident changed in the store: median {statistics.median(stored) * 1000:.1f} ms, p95 "
        f"{pct(stored, 0.95) * 1000:.1f} ms"
    )
    print(
        f"to the reply in the thread: median {statistics.median(shown) * 1000:.1f} ms, p95 "
        f"{pct(shown, 0.95) * 1000:.1f} ms"
    )
    print(
        f"{n} repeated presses answered in {repeats:.2f} s: {extra_entries} new audit entries, {extra_replies} new "
        "thread replies"
    )
    result("ack_p95_ms", round(pct(acks, 0.95) * 1000, 1), "< 3000 (Slack's limit)", pct(acks, 0.95) < 3.0)
    result("thread_reply_p95_ms", round(pct(shown, 0.95) * 1000, 1), "< 3000", pct(shown, 0.95) < 3.0)
    result("repeats_changed_nothing", extra_entries + extra_replies, "0", extra_entries + extra_replies == 0)


def audit_entries() -> list:
    with store.session_scope() as s:
        return audit.entries(s)


if __name__ == "__main__":
    main()
