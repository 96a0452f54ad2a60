"""Hostile interaction payloads: any field of a valid block_actions or view_submission replaced by
junk is either refused as unreadable or read into bounded fields; reading never raises anything else."""

from __future__ import annotations

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pollwatch.notify.interact import BadPayload, modal, parse_action, parse_submission
from pollwatch.responders import Action, Request
from tests.fakes.mutations import parent_of, paths

BUTTON = {
    "type": "block_actions",
    "user": {"id": "U0RESP0001", "username": "dana", "name": "dana", "team_id": "T0"},
    "container": {"type": "message", "message_ts": "1700000001.000001", "channel_id": "C0KZ0ALERT"},
    "trigger_id": "1.2.abc",
    "channel": {"id": "C0KZ0ALERT", "name": "pollwatch-kz"},
    "message": {"ts": "1700000001.000001", "text": "x"},
    "actions": [
        {
            "action_id": "pollwatch:change_cause",
            "block_id": "respond-kz-1",
            "type": "button",
            "value": json.dumps({"incident": "kz-nationwide-1", "version": 3}),
            "action_ts": "1700000002.1",
        }
    ],
}
REQ = Request(
    action=Action.change_cause,
    incident_id="kz-nationwide-1",
    user_id="U0RESP0001",
    version=3,
    source={"channel": "C0KZ0ALERT", "message_ts": "1700000001.000001"},
)
VIEW = modal(REQ)
SUBMIT = {
    "type": "view_submission",
    "user": {"id": "U0RESP0001", "username": "dana"},
    "view": {
        **VIEW,
        "id": "V000000001",
        "state": {
            "values": {
                "cause": {"cause_select": {"type": "static_select", "selected_option": {"value": "power_outage"}}},
                "why": {"why_input": {"type": "plain_text_input", "value": "grid operator's report"}},
            }
        },
    },
}

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=50),
    st.just("x" * 5000),
    st.just("<!channel> <@U1>"),
    st.just('{"incident": 5}'),
    st.just("[]"),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _mutated(doc: dict, data: st.DataObject, junk: object) -> dict:
    doc = copy.deepcopy(doc)
    path = data.draw(st.sampled_from(paths(doc)[1:]))
    parent = parent_of(doc, path)
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = junk
    return doc


def _bounded(req: Request) -> None:
    assert isinstance(req.incident_id, str) and 0 < len(req.incident_id) <= 64
    assert isinstance(req.user_id, str) and 0 < len(req.user_id) <= 32
    assert len(req.user_name) <= 80 and len(req.why) <= 3000 and (req.cause is None or len(req.cause) <= 40)
    assert req.version is None or isinstance(req.version, int)
    assert all(v is None or (isinstance(v, str) and len(v) <= 200) for v in req.source.values())


def test_the_valid_payloads_read():
    req, trigger = parse_action(BUTTON)
    assert (req.action, req.incident_id, req.version, trigger) == (Action.change_cause, "kz-nationwide-1", 3, "1.2.abc")
    sub = parse_submission(SUBMIT)
    assert (sub.cause, sub.why, sub.source["message_ts"]) == (
        "power_outage",
        "grid operator's report",
        "1700000001.000001",
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), junk=JUNK)
def test_hostile_button_payloads(data, junk):
    payload = _mutated(BUTTON, data, junk)
    try:
        req, _ = parse_action(payload)
    except BadPayload:
        return
    _bounded(req)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), junk=JUNK)
def test_hostile_modal_submissions(data, junk):
    payload = _mutated(SUBMIT, data, junk)
    try:
        req = parse_submission(payload)
    except BadPayload:
        return
    _bounded(req)


def test_responders_on_the_root_message_are_escaped_and_blocks_stay_valid(kz_watch):
    from slack_sdk.models.blocks import Block

    from pollwatch.notify.render import draft_message, root_message
    from tests.fakes.slack_scenarios import nationwide

    inc = nationwide(kz_watch).model_copy(
        update={
            "responses": [
                {
                    "action": "acknowledge",
                    "key": "a1",
                    "by": "<!channel> mallory",
                    "user_id": "<!here>",
                    "at": "2019-06-09T05:12:00Z",
                },
                {
                    "action": "acknowledge",
                    "key": "a2",
                    "by": "dana",
                    "user_id": "U0DANA0001",
                    "at": "2019-06-09T05:13:00Z",
                },
                {
                    "action": "false_alarm",
                    "key": "false_alarm",
                    "by": "lead",
                    "user_id": "U0LEAD0001",
                    "why": "<https://evil|click> & more",
                    "at": "2019-06-09T05:20:00Z",
                },
            ]
        }
    )
    msg = root_message(kz_watch, inc, key="k")
    shown = json.dumps(msg.blocks)
    assert "&lt;!channel&gt; mallory" in shown and "<!here>" not in shown and "<!channel>" not in shown
    assert "<@U0DANA0001>" in shown and "&lt;https://evil|click&gt; &amp; more" in shown
    assert "CLOSED (false alarm)" in shown
    assert [
        e["action_id"] for b in msg.blocks if b.get("block_id", "").startswith("respond-") for e in b["elements"]
    ] == ["pollwatch:draft"]
    draft = draft_message(
        kz_watch, inc, "# Headline <!channel>\n" + ("a & b <c> " * 40 + "\n") * 500, key="d", requested_by="<!here>"
    )
    for b in msg.blocks + draft.blocks:
        Block.parse(b).validate_json()
    assert len(draft.blocks) <= 50 and "<!channel>" not in json.dumps(draft.blocks) and "<!here>" not in draft.text
