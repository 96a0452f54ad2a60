"""The notify task: credentials from Secret blocks or the environment, Slack when they exist, console otherwise."""

from __future__ import annotations

import pytest
from prefect import flow
from pydantic import SecretStr

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_scenarios import nationwide, story

pytestmark = pytest.mark.usefixtures("prefect_harness")

TOKEN = "xoxb-canary-task-4242-DO-NOT-LEAK"


def test_credentials_blocks_win_over_the_environment(monkeypatch):
    from prefect.blocks.system import Secret

    from pollwatch.tasks.notify import BOT_TOKEN_BLOCK, slack_credentials

    monkeypatch.delenv("POLLWATCH_SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("POLLWATCH_SLACK_WEBHOOK_URL", raising=False)
    assert slack_credentials() == (None, None)
    monkeypatch.setenv("POLLWATCH_SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/canary")
    token, webhook = slack_credentials()
    assert token is None and isinstance(webhook, SecretStr)
    Secret(value=TOKEN).save(BOT_TOKEN_BLOCK, overwrite=True)
    try:
        token, webhook = slack_credentials()
        assert token is not None and token.get_secret_value() == TOKEN and webhook is None
        assert TOKEN not in repr(token)
    finally:
        Secret.delete(BOT_TOKEN_BLOCK)
    assert slack_credentials()[0] is None


def test_notify_task_delivers_to_slack_when_a_token_is_set(kz_watch, monkeypatch, capsys):
    from pollwatch import store
    from pollwatch.tasks.notify import notify_task

    @flow(name="notify-test")
    def run(events):  # type: ignore[no-untyped-def]
        return notify_task(kz_watch, events)

    events = story(nationwide(kz_watch), updates=1, end=False)
    with FakeSlack(token=TOKEN) as fake:
        monkeypatch.setenv("POLLWATCH_SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("POLLWATCH_SLACK_BASE_URL", fake.base_url)
        monkeypatch.setattr("pollwatch.notify.transports.Pacer.wait", lambda self, channel: None)
        alerts = run(events)
        run(events)  # a retried tick
    assert len(alerts) == 2
    roots = fake.roots("pollwatch-kz")
    assert len(roots) == 1 and len(fake.thread("pollwatch-kz", roots[0]["ts"])) == 1
    assert "Nationwide internet outage" not in capsys.readouterr().out  # Slack, not the console
    with store.session_scope() as s:
        assert all(r.remote_ref.startswith("slack:C0KZ0ALERT:") for r in store.alert_rows(s))
