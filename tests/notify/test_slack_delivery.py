"""Delivery through the real slack_sdk WebClient against a local fake of the Slack Web API."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from slack_sdk.models.blocks import Block

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_scenarios import (
    alerts_for,
    anomalies_and_observations,
    nationwide,
    service_block,
    story,
)
from pollwatch import outbox, store
from pollwatch.models import Notice, NoticeLevel
from pollwatch.notify import (
    ConsoleTransport,
    SlackTransport,
    WebhookTransport,
    choose_transport,
    deliver_outbox,
    notice_alerts,
)
from pollwatch.notify.render import Message
from pollwatch.notify.transports import DeliveryError

TOKEN = "xoxb-canary-1111-2222-DO-NOT-LEAK"
TINY_PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64


def tiny_chart(watch, inc, anomalies):
    return TINY_PNG


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(token=TOKEN) as f:
        yield f


@pytest.fixture
def slack(fake) -> SlackTransport:
    return SlackTransport(SecretStr(TOKEN), base_url=fake.base_url, timeout=0.5, pace=0.0)


def enqueue(alerts) -> None:
    with store.session_scope() as s:
        outbox.enqueue_alerts(s, alerts)


def deliver(watch, transport, **kw):
    kw.setdefault("chart", tiny_chart)
    kw.setdefault("retry_delays", (0.01, 0.01))
    return deliver_outbox(watch, transport, **kw)


def outbox_rows():
    with store.session_scope() as s:
        return store.alert_rows(s)


def assert_valid_blocks(fake: FakeSlack) -> None:
    for c in fake.calls:
        if c.method in ("chat.postMessage", "chat.update"):
            assert c.params.get("text"), "every message carries a text fallback"
            for b in c.params.get("blocks") or []:
                Block.parse(b).validate_json()


def test_one_thread_per_incident_root_edited_to_current_state(kz_watch, fake, slack):
    inc = nationwide(kz_watch)
    anomalies, obs = anomalies_and_observations(kz_watch, inc)
    with store.session_scope() as s:
        store.save_anomalies(s, anomalies)
        store.upsert_observations(s, obs)
    enqueue(alerts_for(kz_watch, story(inc, updates=2)))
    # store-backed chart
    report = deliver(kz_watch, slack, chart=None, flow_run_url="http://127.0.0.1:4200/runs/flow-run/f1")
    assert report.ok and len(report.sent) == 4 and not report.waiting

    roots = fake.roots("pollwatch-kz")
    assert len(roots) == 1
    root = roots[0]
    replies = fake.thread("pollwatch-kz", root["ts"])
    texts = [m["text"] for m in replies]
    assert [m.get("files", [{}])[0].get("name") for m in replies if m.get("files")] == [
        f"pollwatch-{inc.id}-start.png",
        f"pollwatch-{inc.id}-end.png",
    ]
    assert sum(t.startswith("Update:") for t in texts) == 2
    assert sum(t.startswith("Recovered:") for t in texts) == 1
    end = next(m for m in replies if m["text"].startswith("Recovered:"))
    assert end["subtype"] == "thread_broadcast"  # recovery also shows in the channel
    assert root["text"].startswith("<!here> ONGOING") is False  # edited: the root shows the final state
    assert "RESOLVED" in root["text"] and root["edits"] == 3
    assert "runs/flow-run/f1" in json.dumps(root["blocks"])
    assert fake.files and all(f["data"].startswith(b"\x89PNG") for f in fake.files.values())
    assert_valid_blocks(fake)
    refs = [r.remote_ref for r in outbox_rows()]
    assert refs[0] == f"slack:C0KZ0ALERT:{root['ts']}" and all(
        r.startswith(f"slack:C0KZ0ALERT:{root['ts']}:") for r in refs[1:]
    )
    # ops channel untouched
    assert fake.roots("pollwatch-ops") == []


def test_critical_start_mentions_and_noncritical_does_not(kz_watch, fake, slack):
    enqueue(alerts_for(kz_watch, story(nationwide(kz_watch), updates=0, end=False)))
    enqueue(alerts_for(kz_watch, story(service_block(kz_watch), updates=0, end=False)))
    deliver(kz_watch, slack)
    first, second = fake.roots("pollwatch-kz")
    assert first["text"].startswith("<!here>") and "<!here>" in first["blocks"][1]["text"]["text"]
    assert "<!here>" not in second["text"]


def test_retried_tick_and_repeated_delivery_send_nothing_twice(kz_watch, fake, slack):
    alerts = alerts_for(kz_watch, story(nationwide(kz_watch), updates=2))
    enqueue(alerts[:2])
    deliver(kz_watch, slack)
    enqueue(alerts[:2])  # the same tick again
    enqueue(alerts)
    deliver(kz_watch, slack)
    deliver(kz_watch, slack)
    posts = fake.calls_to("chat.postMessage")
    assert len(posts) == 4  # root + 2 updates + end
    assert len(fake.roots("pollwatch-kz")) == 1


def test_worker_crash_after_slack_accepted_does_not_post_again(kz_watch, fake, slack, monkeypatch):
    alerts = alerts_for(kz_watch, story(nationwide(kz_watch), updates=1))
    enqueue(alerts)
    real_mark = outbox.mark_alert
    crashed: set[str] = set()

    def die_once_per_alert(session, alert_id, state, remote_ref=None, error=None):
        if alert_id in (alerts[0].id, alerts[1].id) and alert_id not in crashed:
            crashed.add(alert_id)  # Slack took it; the worker dies before the outbox knows
            raise SystemExit("worker killed")
        return real_mark(session, alert_id, state, remote_ref=remote_ref, error=error)

    monkeypatch.setattr(outbox, "mark_alert", die_once_per_alert)
    recovered = 0
    for _ in range(3):
        try:
            recovered += deliver(kz_watch, slack).recovered
        except SystemExit:
            pass
    assert crashed == {alerts[0].id, alerts[1].id}
    report = deliver(kz_watch, slack)
    assert report.ok and not report.sent  # nothing left
    roots = fake.roots("pollwatch-kz")
    assert len(roots) == 1
    replies = [m for m in fake.thread("pollwatch-kz", roots[0]["ts"]) if not m.get("files")]
    assert [m["text"].split(":")[0] for m in replies] == ["Update", "Recovered"]
    # no second chart either
    assert len([m for m in fake.thread("pollwatch-kz", roots[0]["ts"]) if m.get("files")]) == 2
    assert all(r.state == "sent" for r in outbox_rows())


@pytest.mark.parametrize("method", ["chat.postMessage", "files.completeUploadExternal"])
def test_timeout_after_slack_accepted_is_looked_up_not_reposted(kz_watch, fake, slack, method):
    enqueue(alerts_for(kz_watch, story(nationwide(kz_watch), updates=1)))
    fake.fail(method, "timeout", times=1, delay=1.0)
    report = deliver(kz_watch, slack)
    assert report.ok, report.errors
    roots = fake.roots("pollwatch-kz")
    assert len(roots) == 1
    replies = fake.thread("pollwatch-kz", roots[0]["ts"])
    assert len([m for m in replies if m["text"].startswith("Update:")]) == 1
    assert len([m for m in replies if m.get("files")]) == 2
    if method == "chat.postMessage":
        assert report.recovered == 1 and fake.calls_to("conversations.history")


def test_timeout_on_a_thread_reply_is_looked_up_in_the_thread(kz_watch, fake, slack):
    alerts = alerts_for(kz_watch, story(nationwide(kz_watch), updates=1))
    enqueue(alerts[:1])
    deliver(kz_watch, slack)
    enqueue(alerts)
    fake.fail("chat.postMessage", "timeout", times=1, delay=1.0)
    report = deliver(kz_watch, slack)
    assert report.ok and report.recovered == 1 and fake.calls_to("conversations.replies")
    root = fake.roots("pollwatch-kz")[0]
    assert len([m for m in fake.thread("pollwatch-kz", root["ts"]) if m["text"].startswith("Update:")]) == 1


def test_rate_limit_honours_retry_after(kz_watch, fake, slack):
    enqueue(alerts_for(kz_watch, story(nationwide(kz_watch), updates=0, end=False)))
    fake.fail("chat.postMessage", "ratelimit", times=1, retry_after=1)
    report = deliver(kz_watch, slack)
    assert report.ok
    posts = fake.calls_to("chat.postMessage")
    assert [c.fault for c in posts] == ["ratelimit", None]
    assert posts[1].at - posts[0].at >= 1.0  # waited at least Retry-After before trying again
    assert len(fake.roots("pollwatch-kz")) == 1


def test_server_error_is_retried_without_duplicates(kz_watch, fake, slack):
    enqueue(alerts_for(kz_watch, story(nationwide(kz_watch), updates=1)))
    fake.fail("chat.postMessage", "server_error", times=2)
    report = deliver(kz_watch, slack)
    assert report.ok
    assert len(fake.roots("pollwatch-kz")) == 1
    root = fake.roots("pollwatch-kz")[0]
    assert len([m for m in fake.thread("pollwatch-kz", root["ts"]) if not m.get("files")]) == 2


def test_pacing_keeps_about_one_message_per_channel_per_second(kz_watch, fake):
    paced = SlackTransport(SecretStr(TOKEN), base_url=fake.base_url, timeout=0.5, pace=0.3)
    enqueue(alerts_for(kz_watch, story(nationwide(kz_watch), updates=1, end=False)))
    deliver(kz_watch, paced, chart=lambda *a: None)
    writes = [c for c in fake.calls if c.method in ("chat.postMessage", "chat.update")]
    assert len(writes) == 3
    # the pacer spaces the sends by 0.3 s (unpaced, they arrive milliseconds apart). The fake stamps
    # arrivals, which a busy machine can delay one by one, so bound each gap loosely and the span tightly.
    assert all(b.at - a.at >= 0.15 for a, b in zip(writes, writes[1:]))
    assert writes[-1].at - writes[0].at >= 0.55


def test_console_prints_the_same_content_without_credentials(kz_watch):
    out = io.StringIO()
    transport = choose_transport(None, None, stream=out)
    assert isinstance(transport, ConsoleTransport)
    enqueue(alerts_for(kz_watch, story(nationwide(kz_watch), updates=1)))
    report = deliver(kz_watch, transport)
    text = out.getvalue()
    assert report.ok and len(report.sent) == 3
    assert "Nationwide internet outage in Kazakhstan" in text and "Kazakhtelecom (AS9198)" in text
    assert "Update" in text and "Recovered" in text and "lasted" in text
    assert all(r.remote_ref.startswith("console:") for r in outbox_rows())


def test_webhook_fallback_posts_plain_messages(kz_watch, fake):
    transport = choose_transport(None, SecretStr(fake.webhook_url), pace=0.0, timeout=1)
    assert isinstance(transport, WebhookTransport)
    enqueue(alerts_for(kz_watch, story(nationwide(kz_watch), updates=1)))
    report = deliver(kz_watch, transport)
    assert report.ok
    msgs = fake.roots("pollwatch-kz")
    assert [m["text"].split(":")[0].split(" ")[-1] for m in msgs] == ["ONGOING", "Update", "Recovered"]
    for m in msgs:
        for b in m["blocks"]:
            Block.parse(b).validate_json()


def test_operator_notices_go_to_the_ops_channel_only(kz_watch, fake, slack):
    from tests.fakes.slack_scenarios import T0

    notices = [
        Notice(
            time=T0,
            level=NoticeLevel.warning,
            source="ioda",
            message="IODA answered 503 for 3 requests",
            watch=kz_watch.name,
        ),
        Notice(
            time=T0, level=NoticeLevel.error, source="webprobe", message="vantage almaty-1 offline", watch=kz_watch.name
        ),
    ]
    enqueue(notice_alerts(kz_watch, notices))
    enqueue(alerts_for(kz_watch, story(nationwide(kz_watch), updates=0, end=False)))
    deliver(kz_watch, slack)
    ops = fake.roots("pollwatch-ops")
    assert [m["text"] for m in ops] == [
        "[warning] ioda: IODA answered 503 for 3 requests",
        "[error] webprobe: vantage almaty-1 offline",
    ]
    assert len(fake.roots("pollwatch-kz")) == 1
    assert all("ioda" not in m["text"].split(":")[0] for m in fake.roots("pollwatch-kz"))


def test_data_gaps_become_one_ops_notice_per_signal(kz_watch, fake, slack):
    from datetime import timedelta

    from pollwatch.models import Gap
    from pollwatch.notify import gap_alerts, gap_notices
    from tests.fakes.slack_scenarios import T0

    gaps = [
        Gap(
            source="ioda",
            signal="bgp",
            entity=f"KZ/asn={a}",
            start=T0,
            end=T0 + timedelta(minutes=30),
            reason="no data from the source for this series",
        )
        for a in (9198, 35168, 29355, 21299, 48503, 1, 2)
    ]
    gaps.append(
        Gap(
            source="ooni",
            signal="service_failure_rate",
            entity="KZ/asn=9198/service=whatsapp",
            start=T0,
            end=T0 + timedelta(hours=2),
            reason="no measurements",
        )
    )
    assert len(gap_notices(kz_watch, gaps)) == 2
    enqueue(gap_alerts(kz_watch, gaps))
    enqueue(gap_alerts(kz_watch, gaps))  # a retried tick: nothing new
    later = [g.model_copy(update={"entity": g.entity + "/x", "end": g.end + timedelta(minutes=5)}) for g in gaps]
    enqueue(gap_alerts(kz_watch, later))  # more gaps within the same hour: no second notice
    deliver(kz_watch, slack)
    ops = [m["text"] for m in fake.roots("pollwatch-ops")]
    assert len(ops) == 2 and "no bgp from ioda for 7 series" in ops[0] and "and 2 more" in ops[0]
    assert fake.roots("pollwatch-kz") == []


def test_two_delivery_runs_at_once_post_each_alert_once(kz_watch, fake):
    """A tick delivering while a responder runs `pollwatch alerts deliver`: one run holds the watch's
    delivery lease, the other leaves the alerts to it, so nothing reaches Slack twice."""
    import threading

    alerts = alerts_for(kz_watch, story(nationwide(kz_watch), updates=3))
    enqueue(alerts)
    reports, start = [], threading.Barrier(2)

    def run() -> None:
        start.wait()
        paced = SlackTransport(SecretStr(TOKEN), base_url=fake.base_url, timeout=0.5, pace=0.05)  # runs overlap
        reports.append(deliver(kz_watch, paced))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(fake.calls_to("chat.postMessage")) == len(alerts)  # root, 3 updates, end: each once
    assert len(fake.roots("pollwatch-kz")) == 1
    assert len(fake.calls_to("files.completeUploadExternal")) == 2  # the start and end charts, each shared once
    assert sorted(len(r.sent) for r in reports) == [0, len(alerts)]
    busy = next(r for r in reports if not r.sent)
    assert busy.busy and busy.waiting == {}  # it says another run holds the lease; nothing left waiting
    assert all(r.state == "sent" for r in outbox_rows())


def test_a_chart_upload_retried_after_a_timeout_is_shared_once(kz_watch, fake):
    """Slack shares a completed upload asynchronously: the retry cannot see it in the thread yet. The transport
    keeps the file id and asks files.info, so the chart appears once; an upload that never completed is completed."""
    fake.share_delay = 1.5
    slack = SlackTransport(
        SecretStr(TOKEN), base_url=fake.base_url, timeout=0.5, pace=0.0, upload_retry_delays=(0.01, 0.01)
    )
    enqueue(alerts_for(kz_watch, story(nationwide(kz_watch), updates=0, end=False)))
    fake.fail("files.completeUploadExternal", "timeout", times=1, delay=1.0)  # completed, the answer lost
    report = deliver(kz_watch, slack)
    assert report.ok, report.errors
    assert len(fake.calls_to("files.getUploadURLExternal")) == 1 and fake.calls_to("files.info")
    time.sleep(2.0)
    root = fake.roots("pollwatch-kz")[0]
    assert len([m for m in fake.thread("pollwatch-kz", root["ts"]) if m.get("files")]) == 1
    # the other way round: the completion never reached Slack (a 5xx before it was stored), the retry completes the same
    # file
    fake.share_delay = 0.0
    other = SlackTransport(SecretStr(TOKEN), base_url=fake.base_url, timeout=0.5, pace=0.0, upload_retry_delays=(0.01,))
    cid, ts = other.post("pollwatch-kz", Message(text="root"))
    fake.fail("files.completeUploadExternal", "server_error", times=1)
    other.upload("pollwatch-kz", ts, "chart.png", "a chart", TINY_PNG)
    assert len(fake.calls_to("files.getUploadURLExternal")) == 2  # one per upload, none for the retry
    assert len([m for m in fake.thread("pollwatch-kz", ts) if m.get("files")]) == 1


def test_private_channels_by_id_and_by_name_and_clear_errors(kz_watch, fake):
    fake.channels["pollwatch-kz-private"] = "G0PRIVATE1"
    fake.messages["G0PRIVATE1"] = []
    fake.private.add("pollwatch-kz-private")
    fake.channels["pollwatch-kz-elsewhere"] = "C0NOTJOIND"
    fake.messages["C0NOTJOIND"] = []
    fake.not_member.add("pollwatch-kz-elsewhere")
    for i in range(7):  # more public channels than a page holds
        fake.channels[f"zz-other-{i}"] = f"C0OTHER00{i}"
        fake.messages[f"C0OTHER00{i}"] = []
    fake.list_page = 3
    slack = SlackTransport(SecretStr(TOKEN), base_url=fake.base_url, timeout=0.5, pace=0.0)
    # an ID: no look-up
    assert slack.channel_id("G0PRIVATE1") == "G0PRIVATE1" and not fake.calls_to("conversations.list")
    assert slack.channel_id("#pollwatch-kz-private") == "G0PRIVATE1"
    asked = [c.params.get("types") for c in fake.calls_to("conversations.list")]
    assert set(asked) == {"public_channel", "private_channel"} and asked.index("private_channel") > asked.index(
        "public_channel"
    )
    assert slack.post("#pollwatch-kz-private", Message(text="hello"))[0] == "G0PRIVATE1"
    with pytest.raises(DeliveryError, match="not a member of #pollwatch-kz-elsewhere") as err:
        slack.channel_id("pollwatch-kz-elsewhere")
    assert err.value.kind == "channel"
    with pytest.raises(DeliveryError, match="no channel #pollwatch-nowhere visible to the bot") as err:
        slack.channel_id("#pollwatch-nowhere")
    assert err.value.kind == "channel" and err.value.channel == "#pollwatch-nowhere"
    with pytest.raises(DeliveryError, match="not_in_channel"):  # an ID of a channel the bot was not invited to
        slack.post("C0NOTJOIND", Message(text="hello"))


def test_a_slack_answer_dripping_a_byte_at_a_time_is_given_up_at_the_deadline_and_posted_once(kz_watch, fake, caplog):
    """A broken proxy or hostile server accepts the post and answers one byte every 0.2 s: each read is within the
    client's timeout, so without a deadline on the whole call the delivery waited for ever. Given up at the deadline
    as 'may have been accepted', the retry finds the message by its metadata instead of posting it twice."""
    import time

    enqueue(alerts_for(kz_watch, story(nationwide(kz_watch), updates=0, end=False)))
    fake.fail("chat.postMessage", "drip", times=1, delay=0.2)
    slack = SlackTransport(SecretStr(TOKEN), base_url=fake.base_url, timeout=1.0, pace=0.0, call_deadline=2.0)
    began = time.monotonic()
    with caplog.at_level("WARNING", logger="pollwatch.notify"):
        report = deliver(kz_watch, slack)
    assert time.monotonic() - began < 10, "bounded by the call's deadline, not the drip"
    assert "did not answer chat_postMessage within 2 s" in caplog.text
    # the retry looked the message up by its metadata: found, so not posted again
    assert report.ok and report.recovered == 1 and len(report.sent) == 1, report.errors
    assert len(fake.roots("pollwatch-kz")) == 1, "accepted once, never posted twice"
