"""`pollwatch alerts check | outbox | deliver` against the fake Slack, credentials from the environment."""

from __future__ import annotations

from typer.testing import CliRunner

from pollwatch import outbox, store
from pollwatch.cli import app
from tests.conftest import KZ_WATCH
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_scenarios import alerts_for, nationwide, story

TOKEN = "xoxb-canary-cli-9999-DO-NOT-LEAK"


def test_alerts_commands(kz_watch, monkeypatch):
    runner = CliRunner()
    with FakeSlack(token=TOKEN) as fake:
        monkeypatch.setenv("POLLWATCH_SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("POLLWATCH_SLACK_BASE_URL", fake.base_url)
        r = runner.invoke(app, ["alerts", "check", str(KZ_WATCH)])
        assert r.exit_code == 0, r.output
        assert (
            "alerts channel #pollwatch-kz: C0KZ0ALERT" in r.output
            and "ops channel #pollwatch-ops: C0OPS00001" in r.output
        )
        with store.session_scope() as s:
            outbox.enqueue_alerts(s, alerts_for(kz_watch, story(nationwide(kz_watch), updates=1, end=False)))
        r = runner.invoke(app, ["alerts", "outbox", str(KZ_WATCH), "--pending"])
        assert r.exit_code == 0 and "2 alert(s)" in r.output
        monkeypatch.setattr("pollwatch.notify.transports.Pacer.wait", lambda self, channel: None)
        r = runner.invoke(app, ["alerts", "deliver", str(KZ_WATCH)])
        assert r.exit_code == 0, r.output
        assert "slack: 2 delivered" in r.output and len(fake.roots("pollwatch-kz")) == 1
        monkeypatch.setenv("POLLWATCH_SLACK_BOT_TOKEN", "xoxb-canary-wrong-DO-NOT-LEAK")
        r = runner.invoke(app, ["alerts", "check", str(KZ_WATCH)])
        assert r.exit_code == 2 and "invalid_auth" in r.output
        assert "DO-NOT-LEAK" not in r.output
