"""Responders act from Slack: every button pressed through a fake Socket Mode server, and signed HTTP requests.

The real slack_sdk SocketModeClient connects to tests/fakes/slack_socket.py (the URL comes from the
fake Web API's apps.connections.open); payloads are built from the messages the bot really posted
to tests/fakes/slack_api.py. Each test checks what a responder would notice: the incident in the
store, the audit log, the thread and the root message in Slack, and the answer only they see.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr
from slack_sdk.models.blocks import Block

from pollwatch import audit, outbox, store
from pollwatch.models import Cause, IncidentEvent
from pollwatch.notify import SlackTransport, deliver_outbox
from pollwatch.notify.interact import HTTPReceiver, Interactions, SocketModeListener, signature
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_scenarios import alerts_for, nationwide, story
from tests.fakes.slack_socket import FakeSocketMode, wait_for

TOKEN = "xoxb-canary-3333-4444-DO-NOT-LEAK"
SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"  # Slack's documented example signing secret
LEAD, MEMBER, STRANGER, ANYONE = "U0LEAD0001", "U0GROUP001", "U0STRANGE1", "U0ANYONE01"
CHANNEL = "pollwatch-kz"


@pytest.fixture
def watch(kz_watch):
    alerts = kz_watch.alerts.model_copy(update={"responders": [LEAD, "S0RESPOND"], "chart": False})
    return kz_watch.model_copy(update={"alerts": alerts})


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSocketMode() as sock, FakeSlack(token=TOKEN, usergroups={"S0RESPOND": [MEMBER]}) as f:
        f.socket_url = lambda: sock.url
        f.sock = sock  # type: ignore[attr-defined]
        yield f


@pytest.fixture
def transport(fake) -> SlackTransport:
    return SlackTransport(SecretStr(TOKEN), base_url=fake.base_url, timeout=2.0, pace=0.0)


@pytest.fixture
def incident(watch, transport, fake):
    """A nationwide outage whose thread is open in Slack (root message with the
    buttons); returns (incident, root ts).
    """
    inc = nationwide(watch)
    with store.session_scope() as s:
        store.save_incidents(s, [inc])
        outbox.enqueue_alerts(s, alerts_for(watch, story(inc, updates=0, end=False)))
    assert deliver_outbox(watch, transport).ok
    (root,) = fake.roots(CHANNEL)
    return inc, root["ts"]


@pytest.fixture
def interactions(watch, transport) -> Interactions:
    return Interactions(
        transport,
        watch=watch,
        drafter=lambda w, i: f"# DRAFT: internet shutdown in Kazakhstan\n\nIncident {i} \\*measured\\* <b>",
    )


@pytest.fixture
def listener(interactions, fake) -> Iterator[SocketModeListener]:
    with SocketModeListener(interactions, SecretStr(fake.app_token), ping_interval=30) as lst:
        fake.sock.wait_connected()
        yield lst


def stored(inc_id: str):
    with store.session_scope() as s:
        return store.get_incident(s, inc_id)


def log(kind: str | None = None) -> list[audit.AuditEntry]:
    with store.session_scope() as s:
        return audit.entries(s, kind=kind)


def replies(fake: FakeSlack, root_ts: str) -> list[str]:
    return [m["text"] for m in fake.thread(CHANNEL, root_ts)]


def root_text(fake: FakeSlack, root_ts: str) -> str:
    return json.dumps(fake.message(CHANNEL, root_ts)["blocks"])


def told(fake: FakeSlack, user: str) -> list[str]:
    return [e["text"] for e in fake.ephemerals if e["user"] == user]


def press(fake: FakeSlack, ts: str, action: str, user: str, name: str = "responder") -> dict:
    return fake.sock.interact(fake.block_actions(CHANNEL, ts, f"pollwatch:{action}", user=user, name=name))


def open_modal(fake: FakeSlack, ts: str, action: str, user: str) -> str:
    before = set(fake.views)
    ack = press(fake, ts, action, user)
    assert "payload" not in ack or not ack["payload"]
    new = wait_for(lambda: set(fake.views) - before)
    assert new, f"no modal opened for {action}"
    return new.pop()


def assert_valid_blocks(fake: FakeSlack) -> None:
    for c in fake.calls:
        if c.method in ("chat.postMessage", "chat.update"):
            for b in c.params.get("blocks") or []:
                Block.parse(b).validate_json()


def test_every_button_through_socket_mode_changes_store_audit_and_thread(watch, fake, incident, listener):
    inc, root = incident
    assert all(
        f"pollwatch:{a}" in root_text(fake, root)
        for a in ("acknowledge", "confirm", "change_cause", "false_alarm", "draft")
    )
    assert fake.calls_to("apps.connections.open"), "the URL came from apps.connections.open"

    # Acknowledge: anyone in the channel may
    ack = press(fake, root, "acknowledge", ANYONE, "dana")
    assert ack["envelope_id"] and not ack.get("payload")
    assert wait_for(lambda: any("acknowledged by dana" in t for t in replies(fake, root)))
    assert [r["user_id"] for r in stored(inc.id).acknowledged_by] == [ANYONE]
    assert f"<@{ANYONE}>" in root_text(fake, root), "the root message shows who acknowledged"
    acks = [e for e in log("response") if e.payload["action"] == "acknowledge"]
    assert len(acks) == 1 and acks[0].payload["source"]["message_ts"] == root and acks[0].payload["user_id"] == ANYONE
    assert wait_for(lambda: told(fake, ANYONE))

    # Confirm cause (a responder listed by user id)
    press(fake, root, "confirm", LEAD, "lead")
    assert wait_for(lambda: (stored(inc.id).override or {}).get("by") == "lead")
    after = stored(inc.id)
    assert after.cause is Cause.government_directed and after.cause_confidence == 1.0
    assert wait_for(lambda: f"cause confirmed by <@{LEAD}>" in root_text(fake, root))
    (ov,) = log("override")
    assert ov.payload["details"]["source"]["message_ts"] == root and ov.payload["who"] == "lead"

    # Change cause (a member of a listed user group): a modal with the six causes and a required why
    view = open_modal(fake, root, "change_cause", MEMBER)
    options = json.dumps(fake.views[view]["view"]["blocks"])
    assert all(f'"value": "{c.value}"' in options for c in Cause)
    ack = fake.sock.interact(fake.view_submission(view, {"cause": "power_outage", "why": "  "}))
    assert ack["payload"]["response_action"] == "errors" and "why" in ack["payload"]["errors"]
    assert stored(inc.id).cause is Cause.government_directed, "no why: nothing changed"
    ack = fake.sock.interact(
        fake.view_submission(view, {"cause": "power_outage", "why": "KEGOC reports a grid failure"})
    )
    assert not ack.get("payload")
    assert wait_for(lambda: stored(inc.id).cause is Cause.power_outage)
    assert stored(inc.id).override["why"] == "KEGOC reports a grid failure"
    assert wait_for(lambda: any("changed from government_directed to power_outage" in t for t in replies(fake, root)))
    assert len(log("override")) == 2

    # Draft statement: the brief's draft in the thread, escaped for Slack
    press(fake, root, "draft", ANYONE)
    assert wait_for(
        lambda: any("DRAFT: internet shutdown" in json.dumps(m.get("blocks")) for m in fake.thread(CHANNEL, root))
    )
    draft = next(m for m in fake.thread(CHANNEL, root) if "DRAFT" in json.dumps(m.get("blocks")))
    shown = " ".join(b["text"]["text"] for b in draft["blocks"])
    # the brief's Markdown as mrkdwn
    assert "*DRAFT: internet shutdown in Kazakhstan*" in shown and "*measured*" in shown
    assert "&lt;b&gt;" in shown and "<b>" not in shown

    # False alarm: closes the incident as not an outage; later alerts about it stop
    view = open_modal(fake, root, "false_alarm", LEAD)
    fake.sock.interact(fake.view_submission(view, {"why": "IODA's telescope outage, not the country"}))
    assert wait_for(lambda: stored(inc.id).false_alarm is not None)
    assert stored(inc.id).to_public()["false_alarm"]["why"] == "IODA's telescope outage, not the country"
    assert wait_for(lambda: any(t.startswith("Closed as a false alarm") for t in replies(fake, root)))
    assert "CLOSED (false alarm)" in root_text(fake, root)
    n = len(fake.thread(CHANNEL, root))
    later = stored(inc.id).model_copy(update={"version": stored(inc.id).version + 1, "severity": 20000.0})
    with store.session_scope() as s:  # the next tick: the outage goes on in the data
        outbox.enqueue_alerts(
            s,
            alerts_for(
                watch, [IncidentEvent(tick=later.updated_at, change="updated", reasons=["scope grew"], incident=later)]
            ),
        )
    tick = SlackTransport(SecretStr(TOKEN), base_url=fake.base_url, pace=0.0)
    # the listener may still be delivering
    report = wait_for(lambda: (lambda r: None if r.busy else r)(deliver_outbox(watch, tick)))
    assert report.skipped == 1 and len(fake.thread(CHANNEL, root)) == n, "no alert after a false alarm"

    assert audit_ok()
    assert_valid_blocks(fake)


def audit_ok() -> bool:
    with store.session_scope() as s:
        return audit.verify(s).ok


def test_pressed_twice_or_redelivered_acts_once(fake, incident, listener):
    inc, root = incident
    payload = fake.block_actions(CHANNEL, root, "pollwatch:acknowledge", user=ANYONE, name="dana")
    eid = fake.sock.send("interactive", payload)
    fake.sock.wait_ack(eid)
    assert wait_for(lambda: any("acknowledged" in t for t in replies(fake, root)))
    fake.sock.redeliver(eid)  # Slack re-sends an envelope it saw no acknowledgement for
    press(fake, root, "acknowledge", ANYONE, "dana")  # and the responder presses again
    press(fake, root, "confirm", LEAD)
    assert wait_for(lambda: f"cause confirmed by <@{LEAD}>" in root_text(fake, root))
    press(fake, root, "confirm", LEAD)  # again, on the root message edited to the new version
    assert wait_for(lambda: len(told(fake, ANYONE)) == 3 and len(told(fake, LEAD)) == 2)
    assert "already done" in told(fake, LEAD)[-1]
    assert sum("already done" in t for t in told(fake, ANYONE)) == 2
    assert len(stored(inc.id).acknowledged_by) == 1
    assert len([e for e in log("response") if e.payload["action"] == "acknowledge"]) == 1
    assert len(log("override")) == 1
    assert sum("acknowledged" in t for t in replies(fake, root)) == 1


def test_an_answer_slack_refuses_still_leaves_the_thread_told(fake, incident, listener):
    inc, root = incident
    fake.fail("chat.postEphemeral", "api_error", error="user_not_in_channel")
    press(fake, root, "acknowledge", ANYONE, "dana")
    assert wait_for(lambda: any("acknowledged" in t for t in replies(fake, root)))
    assert len(stored(inc.id).acknowledged_by) == 1 and not told(fake, ANYONE)


def test_unauthorised_responder_changes_nothing_and_is_audited(fake, incident, listener):
    inc, root = incident
    before = stored(inc.id)
    thread_before = len(fake.thread(CHANNEL, root))
    press(fake, root, "confirm", STRANGER, "mallory")
    press(fake, root, "change_cause", STRANGER, "mallory")
    press(fake, root, "false_alarm", STRANGER, "mallory")
    assert wait_for(lambda: len(told(fake, STRANGER)) == 3)
    assert all(t.startswith("Not allowed") for t in told(fake, STRANGER))
    assert not fake.views, "no modal opens for someone who may not change the cause"
    refused = [e for e in log("response") if e.payload["action"] == "refused"]
    assert sorted(e.payload["action_requested"] for e in refused) == ["change_cause", "confirm", "false_alarm"]
    assert {e.payload["user_id"] for e in refused} == {STRANGER}
    after = stored(inc.id)
    assert after.model_dump() == before.model_dump(), "the incident is unchanged"
    assert not log("override") and len(fake.thread(CHANNEL, root)) == thread_before

    # a modal opened by a responder but submitted as someone else (a crafted payload) is refused as well
    view = open_modal(fake, root, "change_cause", LEAD)
    fake.sock.interact(
        fake.view_submission(view, {"cause": "cable_cut", "why": "trust me"}, user=STRANGER, name="mallory")
    )
    assert wait_for(lambda: len(told(fake, STRANGER)) == 4)
    assert stored(inc.id).cause is Cause.government_directed and not log("override")


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    req = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded", **headers}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def signed(body: bytes, secret: str = SIGNING, at: float | None = None) -> dict[str, str]:
    ts = str(int(at if at is not None else time.time()))
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature(secret, ts, body)}


def test_http_request_url_checks_slack_signature(fake, incident, interactions):
    inc, root = incident
    with HTTPReceiver(interactions, SecretStr(SIGNING)) as http:
        body = urlencode(
            {"payload": json.dumps(fake.block_actions(CHANNEL, root, "pollwatch:acknowledge", user=ANYONE))}
        ).encode()
        forged = dict(signed(body), **{"X-Slack-Signature": "v0=" + "0" * 64})
        assert _post(http.url, body, forged)[0] == 401
        assert _post(http.url, body, signed(body, secret="not-the-secret"))[0] == 401
        assert _post(http.url, body, signed(body, at=time.time() - 6 * 60))[0] == 401  # replayed after 5 minutes
        assert _post(http.url, body, {})[0] == 401
        tampered = body.replace(b"acknowledge", b"false_alarm")
        assert _post(http.url, tampered, signed(body))[0] == 401
        assert http.counts == {"accepted": 0, "stale": 1, "forged": 4, "bad": 0}
        assert stored(inc.id).acknowledged_by == [] and not log("response")

        status, _ = _post(http.url, body, signed(body))
        assert status == 200
        assert wait_for(lambda: stored(inc.id).acknowledged_by)
        # Slack's retry: acts once
        assert _post(http.url, body, dict(signed(body), **{"X-Slack-Retry-Num": "1"}))[0] == 200
        assert wait_for(lambda: len(told(fake, ANYONE)) == 2)
        assert len(stored(inc.id).acknowledged_by) == 1

        # Change cause over HTTP: the press opens the form; a submission without a why gets the error in the HTTP answer
        body = urlencode(
            {"payload": json.dumps(fake.block_actions(CHANNEL, root, "pollwatch:change_cause", user=LEAD))}
        ).encode()
        assert _post(http.url, body, signed(body))[0] == 200
        view = wait_for(lambda: next(iter(fake.views), None))
        assert view, "the form opened"
        body = urlencode(
            {"payload": json.dumps(fake.view_submission(view, {"cause": "cable_cut", "why": " "}))}
        ).encode()
        status, answer = _post(http.url, body, signed(body))
        assert status == 200 and json.loads(answer)["response_action"] == "errors"
        body = urlencode(
            {
                "payload": json.dumps(
                    fake.view_submission(view, {"cause": "cable_cut", "why": "KazTransCom: cut near Almaty"})
                )
            }
        ).encode()
        assert _post(http.url, body, signed(body))[0] == 200
        assert wait_for(lambda: stored(inc.id).cause is Cause.cable_cut)
        assert http.counts["accepted"] == 5


def test_playbook_responders_are_validated(tmp_path):
    from pollwatch.playbook import AlertRouting

    assert AlertRouting(responders=["U0123ABCD", "W0123ABCD", "S0123ABCD"]).responders
    with pytest.raises(ValueError, match=r"responders\[1\].*not a Slack user id"):
        AlertRouting(responders=["U0123ABCD", "@alice"])


def test_a_tick_keeps_what_responders_did(watch, incident, fake, listener):
    """A tick that read the incident before a responder acted (or re-attributes it after) keeps the action."""
    from pollwatch.attribute import attribute

    inc, root = incident
    press(fake, root, "acknowledge", ANYONE, "dana")
    assert wait_for(lambda: stored(inc.id).acknowledged_by)
    with store.session_scope() as s:
        store.save_incidents(s, [inc.model_copy(update={"severity": 12345.0})])  # the tick's stale copy
    kept = stored(inc.id)
    assert kept.severity == 12345.0 and [r["user_id"] for r in kept.acknowledged_by] == [ANYONE]
    (ev,) = attribute(watch, [IncidentEvent(tick=inc.updated_at, change="updated", incident=inc)], known={inc.id: kept})
    assert ev.incident.acknowledged_by and ev.incident.version > kept.version


def test_pollwatch_slack_listen_receives_actions_and_stops_on_sigterm(fake, incident):
    """The command a responder's operator runs: credentials from the environment, Socket Mode, SIGTERM stops it."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    inc, root = incident
    env = {
        **os.environ,
        "POLLWATCH_SLACK_BOT_TOKEN": TOKEN,
        "POLLWATCH_SLACK_APP_TOKEN": fake.app_token,
        "POLLWATCH_SLACK_BASE_URL": fake.base_url,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "pollwatch.cli", "slack", "listen"],
        env=env,
        cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "listening for Slack actions over Socket Mode" in proc.stdout.readline()
        fake.sock.wait_connected(timeout=30)
        press(fake, root, "acknowledge", ANYONE, "dana")
        press(fake, root, "false_alarm", STRANGER, "mallory")  # the watch file lists no responders: refused
        assert wait_for(lambda: stored(inc.id).acknowledged_by and len(fake.ephemerals) == 2, timeout=30)
        assert any(t.startswith("Not allowed") and "lists no responders" in t for t in told(fake, STRANGER))
        assert wait_for(lambda: any("acknowledged by dana" in t for t in replies(fake, root)), timeout=30)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert TOKEN not in out + err and fake.app_token not in out + err
    finally:
        if proc.poll() is None:
            proc.kill()


def test_responders_verdicts_feed_evaluation(watch, fake, incident, listener, tmp_path):
    """A false alarm and a changed cause become labels `pollwatch evaluate --live` reports."""
    from typer.testing import CliRunner

    from pollwatch.cli import app
    from pollwatch.evaluate import responder_verdicts

    inc, root = incident
    other = nationwide(watch, inc_id="kz-nationwide-2")
    with store.session_scope() as s:
        store.save_incidents(s, [other])
    press(fake, root, "confirm", LEAD, "lead")
    assert wait_for(lambda: stored(inc.id).override)
    view = open_modal(fake, root, "false_alarm", LEAD)
    fake.sock.interact(fake.view_submission(view, {"why": "measurement artefact"}, name="lead"))
    assert wait_for(lambda: stored(inc.id).false_alarm)
    with store.session_scope() as s:
        v = responder_verdicts(store.list_incidents(s, watch.name))
    assert (v["incidents"], v["judged"], v["false_alarms"], v["precision_judged"]) == (2, 1, 1, 0.0)
    assert v["labels"][0]["verdict"] == "false_alarm" and v["labels"][0]["why"] == "measurement artefact"
    result = CliRunner().invoke(app, ["evaluate", "--live", watch.name, "--json", str(tmp_path / "v.json")])
    assert result.exit_code == 0, result.output
    assert "1 false alarm(s)" in result.output and json.loads((tmp_path / "v.json").read_text())["judged"] == 1
    shown = CliRunner().invoke(app, ["audit", "show", inc.id])
    assert "closed as a false alarm by lead" in shown.output and "confirm by lead" not in shown.output
    assert f"message {root}" in shown.output
    assert wait_for(lambda: any(t.startswith("Closed as a false alarm") for t in replies(fake, root))), (
        "an action right after another is delivered at once too"
    )


def test_listen_says_which_credential_is_missing(monkeypatch):
    from typer.testing import CliRunner

    from pollwatch.cli import app

    for var in ("POLLWATCH_SLACK_BOT_TOKEN", "POLLWATCH_SLACK_APP_TOKEN", "POLLWATCH_SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(var, raising=False)
    result = CliRunner().invoke(app, ["slack", "listen"])
    assert result.exit_code == 2 and "POLLWATCH_SLACK_BOT_TOKEN" in result.output
    monkeypatch.setenv("POLLWATCH_SLACK_BOT_TOKEN", TOKEN)
    result = CliRunner().invoke(app, ["slack", "listen"])
    assert result.exit_code == 2 and "POLLWATCH_SLACK_APP_TOKEN" in result.output and TOKEN not in result.output
    result = CliRunner().invoke(app, ["slack", "listen", "--http", "127.0.0.1:0"])
    assert result.exit_code == 2 and "POLLWATCH_SLACK_SIGNING_SECRET" in result.output
    monkeypatch.setenv("POLLWATCH_SLACK_APP_TOKEN", "xoxb-not-an-app-token")
    result = CliRunner().invoke(app, ["slack", "listen"])
    assert result.exit_code == 2 and "xapp-" in result.output and "xoxb-not-an-app-token" not in result.output


def test_draft_statement_is_pollwatch_brief(watch, transport, fake, incident):
    """Without a drafter given, the button posts `pollwatch brief`'s own draft for the incident (pollwatch.brief)."""
    from pollwatch.brief import incident_statement

    inc, root = incident
    interactions = Interactions(transport, watch=watch)
    with SocketModeListener(interactions, SecretStr(fake.app_token), ping_interval=30):
        fake.sock.wait_connected()
        press(fake, root, "draft", ANYONE, "dana")
        draft = wait_for(
            lambda: next(
                (m for m in fake.thread(CHANNEL, root) if "Draft statement" in json.dumps(m.get("blocks"))), None
            )
        )
    assert draft, fake.ephemerals
    shown = " ".join(b["text"]["text"] for b in draft["blocks"])
    expected = incident_statement(watch, inc.id)
    first = next(line.lstrip("# ").replace("\\", "") for line in expected.splitlines() if line.strip())
    assert first and first.split()[0] in shown, (first, shown[:300])
    assert f"incident {inc.id}" in shown
    (entry,) = [e for e in log("response") if e.payload["action"] == "draft"]
    assert entry.payload["user_id"] == ANYONE and len(entry.payload["sha256"]) == 64
