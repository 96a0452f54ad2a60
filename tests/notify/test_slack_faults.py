"""Slack faults: bad credentials, a missing channel, an hour without Slack; and no secret anywhere."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_scenarios import T0, alerts_for, nationwide, service_block, story
from pollwatch import outbox, store
from pollwatch.notify import DeliveryError, SlackTransport, WebhookTransport, deliver_outbox

TOKEN = "xoxb-canary-3333-4444-DO-NOT-LEAK"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(token=TOKEN) as f:
        yield f


def transport(fake: FakeSlack, token: str = TOKEN) -> SlackTransport:
    return SlackTransport(SecretStr(token), base_url=fake.base_url, timeout=0.5, pace=0.0)


def enqueue(alerts) -> None:
    with store.session_scope() as s:
        outbox.enqueue_alerts(s, alerts)


def deliver(watch, t, **kw):
    kw.setdefault("chart", lambda *a: b"\x89PNG\r\n\x1a\n" + b"0" * 32)
    kw.setdefault("retry_delays", (0.01,))
    return deliver_outbox(watch, t, **kw)


def rows():
    with store.session_scope() as s:
        return store.alert_rows(s)


def everything_stored(url: str) -> str:
    """Every row of every table of the store, as text."""
    with store.session_scope() as s:
        tables = [r[0] for r in s.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))]
        return "\n".join(
            json.dumps([list(map(str, r)) for r in s.execute(text(f'SELECT * FROM "{t}"'))]) for t in tables
        )


def test_invalid_auth_keeps_alerts_and_leaks_no_token(kz_watch, fake, caplog, isolated_store):
    caplog.set_level(logging.DEBUG)
    wrong = "xoxb-canary-wrong-5555-DO-NOT-LEAK"
    enqueue(alerts_for(kz_watch, story(nationwide(kz_watch), updates=1)))
    report = deliver(kz_watch, transport(fake, wrong))
    assert report.auth_failed and "invalid_auth" in report.errors["#pollwatch-kz"]
    assert fake.calls and all(c.fault is None for c in fake.calls)  # the fake refused the token itself
    assert not fake.roots("pollwatch-kz")
    assert all(r.state != "sent" for r in rows() if r.incident_id != "-")
    assert report.waiting["#pollwatch-kz"] == 3
    for secret in (wrong, TOKEN):
        assert secret not in caplog.text
        assert secret not in everything_stored(isolated_store)
        assert secret not in json.dumps(report.__dict__, default=str)
    # once the token is right, everything goes out, in order, once
    report = deliver(kz_watch, transport(fake))
    assert report.ok
    root = fake.roots("pollwatch-kz")[0]
    assert [m["text"].split(":")[0] for m in fake.thread("pollwatch-kz", root["ts"]) if not m.get("files")] == [
        "Update",
        "Recovered",
    ]
    ops = [m["text"] for m in fake.roots("pollwatch-ops")]
    assert len(ops) == 2 and "refuses pollwatch's credentials" in ops[0] and "works again" in ops[1]


def test_transport_errors_and_reprs_carry_no_secret(fake, caplog):
    caplog.set_level(logging.DEBUG)
    t = transport(fake, "xoxb-canary-wrong-6666-DO-NOT-LEAK")
    with pytest.raises(DeliveryError) as err:
        t.check()
    assert err.value.kind == "auth" and "DO-NOT-LEAK" not in str(err.value) and err.value.__cause__ is None
    assert "DO-NOT-LEAK" not in repr(t)
    fake.stop()
    hook = WebhookTransport(
        SecretStr(f"http://127.0.0.1:{fake.port if fake._server else 9}/services/T0/B0/xoxb-canary-hook-DO-NOT-LEAK"),
        timeout=1,
        pace=0.0,
    )
    from pollwatch.notify.render import Message

    with pytest.raises(DeliveryError) as err:
        hook.post("#x", Message(text="hello"))
    assert "DO-NOT-LEAK" not in str(err.value) and "DO-NOT-LEAK" not in repr(hook)
    assert "DO-NOT-LEAK" not in caplog.text


def test_channel_not_found_tells_ops_and_delivers_after_the_fix(kz_watch, fake):
    enqueue(alerts_for(kz_watch, story(nationwide(kz_watch), updates=1)))
    fake.fail("chat.postMessage", "channel_not_found", times=1)  # the first post: the incident channel
    report = deliver(kz_watch, transport(fake))
    assert "channel_not_found" in report.errors["#pollwatch-kz"]
    assert not fake.roots("pollwatch-kz")
    ops = fake.roots("pollwatch-ops")
    assert len(ops) == 1 and "cannot post to #pollwatch-kz" in ops[0]["text"] and "3 alert(s)" in ops[0]["text"]
    deliver(kz_watch, transport(fake))  # the bot was invited
    assert len(fake.roots("pollwatch-kz")) == 1
    ops = fake.roots("pollwatch-ops")
    assert len(ops) == 2 and "works again: 3 alert(s)" in ops[1]["text"]


def test_an_hour_without_slack_then_everything_in_order_once(kz_watch, fake):
    """12 five-minute ticks with Slack unreachable while two incidents evolve, then Slack is back."""
    a_events = story(nationwide(kz_watch), updates=4, step=timedelta(minutes=10))
    b = service_block(kz_watch).model_copy(
        update={
            "start": T0 + timedelta(minutes=5),
            "detected_at": T0 + timedelta(minutes=15),
            "updated_at": T0 + timedelta(minutes=15),
        }
    )
    b_events = story(b, updates=3, step=timedelta(minutes=10))
    all_alerts = sorted(alerts_for(kz_watch, a_events + b_events), key=lambda a: (a.created_at, a.sequence, a.id))
    fake.fail("*", "unreachable", times=None)
    t = transport(fake)
    for tick in range(12):
        now = T0 + timedelta(minutes=10 + 5 * tick)
        enqueue([a for a in all_alerts if a.created_at <= now])
        enqueue([a for a in all_alerts if a.created_at <= now])  # retried tick
        report = deliver(kz_watch, t)
        assert not report.sent and report.errors
    enqueue(all_alerts)
    assert not any(m for msgs in fake.messages.values() for m in msgs)
    fake.clear_faults()
    report = deliver(kz_watch, t)
    assert report.ok and not report.waiting
    # every alert once, in the order of the outbox, each incident in its own thread
    roots = fake.roots("pollwatch-kz")
    assert len(roots) == 2
    posted_keys = [
        c.params["metadata"]["event_payload"]["idempotency_key"]
        for c in fake.calls_to("chat.postMessage")
        if c.fault is None and c.params.get("channel") == "C0KZ0ALERT"
    ]
    assert posted_keys == [a.idempotency_key for a in all_alerts]
    for root, events in zip(roots, (a_events, b_events)):
        replies = [m for m in fake.thread("pollwatch-kz", root["ts"]) if not m.get("files")]
        assert len(replies) == len(events) - 1
        assert root["metadata"]["event_payload"]["incident_id"] == events[0].incident.id
    # ops: told it was stuck (once, not once per tick), then that the backlog went out
    ops = [m["text"] for m in fake.roots("pollwatch-ops")]
    assert len(ops) == 2
    assert "Slack is unreachable" in ops[0] and f"works again: {len(all_alerts)} alert(s)" in ops[1]
    assert all(r.state == "sent" for r in rows())
    assert max(r.attempts for r in rows()) == 13  # 12 failed ticks, then delivered


def test_500_on_every_try_leaves_it_for_the_next_tick(kz_watch, fake):
    enqueue(alerts_for(kz_watch, story(nationwide(kz_watch), updates=0, end=False)))
    fake.fail("chat.postMessage", "server_error", times=None)
    report = deliver(kz_watch, transport(fake))
    assert report.waiting == {"#pollwatch-kz": 1, "#pollwatch-ops": 1}  # the ops notice waits too (same Slack)
    assert not [c for c in fake.calls_to("chat.postMessage") if c.params["channel"] == "C0OPS00001"]  # not even tried
    fake.clear_faults()
    report = deliver(kz_watch, transport(fake))
    assert report.ok and len(fake.roots("pollwatch-kz")) == 1
    assert len(fake.roots("pollwatch-ops")) == 2


def test_rejected_blocks_fall_back_to_text_and_a_deleted_root_does_not_block(kz_watch, fake):
    alerts = alerts_for(kz_watch, story(nationwide(kz_watch), updates=1))
    enqueue(alerts[:1])
    fake.fail("chat.postMessage", "api_error", error="invalid_blocks")
    assert deliver(kz_watch, transport(fake)).ok
    root = fake.roots("pollwatch-kz")[0]
    assert "blocks" not in root and root["text"].startswith("<!here> ONGOING")
    fake.messages["C0KZ0ALERT"].remove(root)  # a responder deleted the root message
    fake.messages["C0KZ0ALERT"].append({**root, "text": "(deleted)", "metadata": None, "ts": root["ts"] + "9"})
    enqueue(alerts)
    fake.fail("chat.update", "api_error", times=None, error="message_not_found")
    fake.fail("chat.postMessage", "api_error", times=None, error="thread_not_found")
    report = deliver(kz_watch, transport(fake))
    assert "thread_not_found" in report.errors["#pollwatch-kz"]
    assert report.waiting["#pollwatch-kz"] == 2  # kept in the outbox and reported, not silently dropped
