"""A chart reaches its incident's thread once even when the worker is killed around its upload.

Slack shares a completed upload into its thread asynchronously (files.completeUploadExternal answers before the
share exists; the Slack SDK maintainers' advice is to poll files.info with the file id: slackapi/bolt-js#2115,
slackapi/python-slack-sdk#1329), which tests/fakes/slack_api.py models with `share_delay`. A new process cannot
find the chart in conversations.replies yet: it must ask files.info about the file id the first process recorded in
the store before completing the upload. Each test uses a second, fresh SlackTransport, as a new Prefect worker would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_scenarios import alerts_for, nationwide, story
from pollwatch import outbox, store
from pollwatch.notify import SlackTransport, deliver_outbox

TOKEN = "xoxb-canary-3333-4444-DO-NOT-LEAK"
TINY_PNG = b"\x89PNG\r\n\x1a\n" + b"1" * 64
SHARE_DELAY = 1.5


class Killed(BaseException):
    """The worker's process ends here (SIGKILL of a Prefect worker): nothing after it runs."""


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(token=TOKEN, share_delay=SHARE_DELAY) as f:
        yield f


def transport(fake: FakeSlack) -> SlackTransport:
    return SlackTransport(SecretStr(TOKEN), base_url=fake.base_url, timeout=0.5, pace=0.0, upload_retry_delays=(0.01,))


def deliver(watch, t: SlackTransport):
    return deliver_outbox(watch, t, chart=lambda w, inc, anomalies: TINY_PNG, retry_delays=(0.01,))


def start_alert(watch):
    alerts = alerts_for(watch, story(nationwide(watch), updates=0, end=False))
    with store.session_scope() as s:
        outbox.enqueue_alerts(s, alerts)
    return alerts


def charts_in_thread(fake: FakeSlack) -> list[dict]:
    time.sleep(SHARE_DELAY + 0.5)  # every completed upload has been shared by now
    (root,) = fake.roots("pollwatch-kz")
    return [f for m in fake.thread("pollwatch-kz", root["ts"]) for f in m.get("files") or []]


def kill_after_complete(t: SlackTransport, monkeypatch: pytest.MonkeyPatch) -> None:
    real = t.client.files_completeUploadExternal

    def complete_then_die(**kw):
        real(**kw)  # Slack completed it and will share it into the thread
        raise Killed("worker killed after files.completeUploadExternal")

    monkeypatch.setattr(t.client, "files_completeUploadExternal", complete_then_die)


def kill_before_complete(t: SlackTransport, monkeypatch: pytest.MonkeyPatch) -> None:
    def die(**kw):
        raise Killed("worker killed after the bytes were sent, before files.completeUploadExternal")

    monkeypatch.setattr(t.client, "files_completeUploadExternal", die)


def kill_before_mark(t: SlackTransport, monkeypatch: pytest.MonkeyPatch) -> None:
    def die(*args, **kw):
        raise Killed("worker killed before the outbox marked the alert sent")

    monkeypatch.setattr(outbox, "mark_alert", die)


@pytest.mark.parametrize("kill", [kill_after_complete, kill_before_mark])
def test_a_worker_killed_after_completing_a_chart_does_not_get_it_posted_twice(kz_watch, fake, monkeypatch, kill):
    start_alert(kz_watch)
    first = transport(fake)
    with monkeypatch.context() as m:
        kill(first, m)
        with pytest.raises(Killed):
            deliver(kz_watch, first)
    assert len(fake.calls_to("files.completeUploadExternal")) == 1

    report = deliver(kz_watch, transport(fake))  # the next tick, in a new process

    assert report.ok, report.errors
    assert report.sent and all(r.state == "sent" for r in store_rows())
    assert [f["name"] for f in charts_in_thread(fake)] == ["pollwatch-kz-nationwide-1-start.png"]
    assert len(fake.calls_to("files.getUploadURLExternal")) == 1  # no second copy started
    assert len(fake.calls_to("files.completeUploadExternal")) == 1
    assert len(fake.roots("pollwatch-kz")) == 1
    # what the store keeps is the file id, never the upload URL (it may carry credentials) or the token
    with store.session_scope() as s:
        (row,) = s.execute(select(store.UploadRow)).scalars()
    assert row.file_id == fake.calls_to("files.info")[0].params["file"]
    assert "http" not in f"{row.key} {row.file_id}" and TOKEN not in f"{row.key} {row.file_id}"


def test_a_worker_killed_before_completing_a_chart_has_that_upload_completed_once(kz_watch, fake, monkeypatch):
    start_alert(kz_watch)
    first = transport(fake)
    with monkeypatch.context() as m:
        kill_before_complete(first, m)
        with pytest.raises(Killed):
            deliver(kz_watch, first)
    assert not fake.calls_to("files.completeUploadExternal")
    (first_id,) = fake.files  # uploaded, never completed

    report = deliver(kz_watch, transport(fake))

    assert report.ok, report.errors
    assert len(fake.calls_to("files.completeUploadExternal")) == 1
    assert len(fake.calls_to("files.getUploadURLExternal")) == 1  # the recorded upload was completed, not redone
    (shared,) = charts_in_thread(fake)
    assert shared["id"] == first_id and shared["name"] == "pollwatch-kz-nationwide-1-start.png"


def test_an_upload_slack_no_longer_takes_is_uploaded_afresh_once(kz_watch, fake, monkeypatch):
    """The recorded upload is gone on Slack's side (never completed, expired): a fresh upload is no second copy."""
    start_alert(kz_watch)
    first = transport(fake)
    with monkeypatch.context() as m:
        kill_before_complete(first, m)
        with pytest.raises(Killed):
            deliver(kz_watch, first)
    fake.fail("files.completeUploadExternal", "api_error", error="file_not_found")

    report = deliver(kz_watch, transport(fake))

    assert report.ok, report.errors
    assert len(fake.calls_to("files.getUploadURLExternal")) == 2
    assert len(charts_in_thread(fake)) == 1


def test_without_files_read_a_recorded_chart_is_not_uploaded_again_and_the_alert_goes(kz_watch, fake, monkeypatch):
    """files.info refused (no files:read scope): whether the chart is there is unknown; one chart missing is better
    than two, and the alert itself is delivered (not stopped as a credentials failure)."""
    start_alert(kz_watch)
    first = transport(fake)
    with monkeypatch.context() as m:
        kill_before_mark(first, m)
        with pytest.raises(Killed):
            deliver(kz_watch, first)
    fake.fail("files.info", "api_error", times=None, error="missing_scope")

    report = deliver(kz_watch, transport(fake))

    assert report.ok and not report.auth_failed, report.errors
    assert len(fake.calls_to("files.getUploadURLExternal")) == 1
    assert len(charts_in_thread(fake)) == 1
    assert all(r.state == "sent" for r in store_rows())


def store_rows():
    with store.session_scope() as s:
        return store.alert_rows(s)
