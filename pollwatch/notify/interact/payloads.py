"""Slack's interaction payloads read defensively (every field may be anything): a button press (`block_actions`)
or a modal's submission (`view_submission`) as a `pollwatch.responders.Request`, and the modal itself."""

from __future__ import annotations

import json
from typing import Any

from pollwatch import responders
from pollwatch.models import Cause
from pollwatch.notify.render import ACTION_PREFIX
from pollwatch.responders import Action, Request
from pollwatch.words import CAUSE_WORDS

MODAL_ACTIONS = {Action.change_cause, Action.false_alarm}
WHY_BLOCK, WHY_INPUT = "why", "why_input"
CAUSE_BLOCK, CAUSE_INPUT = "cause", "cause_select"


class BadPayload(ValueError):
    """An interaction pollwatch does not handle or cannot read (answered with an acknowledgement, nothing done)."""


def _dig(doc: Any, *keys: str) -> Any:
    """doc[k1][k2]... where each level is a dict, else {} (payload fields may be anything)."""
    for k in keys:
        doc = doc.get(k) if isinstance(doc, dict) else None
    return doc if doc is not None else {}


def _str(v: Any, n: int = 200) -> str:
    return str(v)[:n] if isinstance(v, (str, int)) else ""


def _button_value(raw: Any) -> tuple[str, int | None]:
    try:
        doc = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        doc = {}
    incident = doc.get("incident") if isinstance(doc, dict) else None
    if not isinstance(incident, str) or not 0 < len(incident) <= 64:
        raise BadPayload("the button names no incident")
    version = doc.get("version")
    return incident, version if isinstance(version, int) and not isinstance(version, bool) else None


def _user(payload: dict[str, Any]) -> tuple[str, str]:
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    uid = _str(user.get("id"), 32)
    if not uid:
        raise BadPayload("the interaction names no user")
    return uid, _str(user.get("username") or user.get("name"), 80)


def parse_action(payload: dict[str, Any]) -> tuple[Request, str | None]:
    """A `block_actions` payload as a responder request, and its trigger_id (to open a modal with)."""
    actions = payload.get("actions") if isinstance(payload.get("actions"), list) else []
    act = next(
        (a for a in actions if isinstance(a, dict) and str(a.get("action_id", "")).startswith(ACTION_PREFIX)), None
    )
    if act is None:
        raise BadPayload("not one of pollwatch's buttons")
    try:
        action = Action(str(act["action_id"]).removeprefix(ACTION_PREFIX))
    except ValueError:
        raise BadPayload(f"unknown pollwatch action {act.get('action_id')!r}") from None
    incident, version = _button_value(act.get("value"))
    uid, name = _user(payload)
    container = payload.get("container") if isinstance(payload.get("container"), dict) else {}
    channel = payload.get("channel") if isinstance(payload.get("channel"), dict) else {}
    message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
    source = {
        "via": "slack",
        "channel": _str(container.get("channel_id") or channel.get("id"), 32),
        "message_ts": _str(container.get("message_ts") or message.get("ts"), 32),
        "thread_ts": _str(message.get("thread_ts"), 32) or None,
        "action_ts": _str(act.get("action_ts"), 32),
    }
    return Request(
        action=action, incident_id=incident, user_id=uid, user_name=name, version=version, source=source
    ), _str(payload.get("trigger_id"), 200) or None


def parse_submission(payload: dict[str, Any]) -> Request:
    """A `view_submission` of pollwatch's modal as a responder request (its why may be empty: the caller checks)."""
    view = payload.get("view") if isinstance(payload.get("view"), dict) else {}
    callback = str(view.get("callback_id", ""))
    if not callback.startswith(ACTION_PREFIX):
        raise BadPayload("not pollwatch's modal")
    try:
        action = Action(callback.removeprefix(ACTION_PREFIX))
    except ValueError:
        raise BadPayload(f"unknown pollwatch modal {callback!r}") from None
    try:
        raw = view.get("private_metadata")
        meta = json.loads(raw if isinstance(raw, str) and raw else "{}")
    except ValueError:
        raise BadPayload("the modal's metadata is unreadable") from None
    incident, version = _button_value(json.dumps(meta) if isinstance(meta, dict) else "")
    why = _dig(view, "state", "values", WHY_BLOCK, WHY_INPUT, "value")
    cause = _dig(view, "state", "values", CAUSE_BLOCK, CAUSE_INPUT, "selected_option", "value")
    uid, name = _user(payload)
    source = {
        "via": "slack",
        "channel": _str(meta.get("channel"), 32),
        "message_ts": _str(meta.get("message_ts"), 32),
        "thread_ts": _str(meta.get("thread_ts"), 32) or None,
        "view_id": _str(view.get("id"), 32),
    }
    return Request(
        action=action,
        incident_id=incident,
        user_id=uid,
        user_name=name,
        why=_str(why, 3000) if isinstance(why, str) else "",
        version=version,
        cause=_str(cause, 40) if isinstance(cause, str) and cause else None,
        source=source,
    )


def modal(req: Request, current: Cause | None = None) -> dict[str, Any]:
    """The modal for Change cause (a cause and a why) or False alarm (a why)."""
    meta = json.dumps(
        {
            "incident": req.incident_id,
            "version": req.version,
            "channel": req.source.get("channel"),
            "message_ts": req.source.get("message_ts"),
            "thread_ts": req.source.get("thread_ts"),
        }
    )
    why = {
        "type": "input",
        "block_id": WHY_BLOCK,
        "label": {"type": "plain_text", "text": "Why"},
        "element": {
            "type": "plain_text_input",
            "action_id": WHY_INPUT,
            "multiline": True,
            "max_length": responders.MAX_WHY,
            "placeholder": {"type": "plain_text", "text": "The source or reasoning; kept with the decision"},
        },
    }
    if req.action is Action.change_cause:
        options = [{"text": {"type": "plain_text", "text": CAUSE_WORDS[c][:75]}, "value": c.value} for c in Cause]
        select: dict[str, Any] = {
            "type": "static_select",
            "action_id": CAUSE_INPUT,
            "options": options,
            "placeholder": {"type": "plain_text", "text": "Choose the cause"},
        }
        if current is not None:
            select["initial_option"] = next(o for o in options if o["value"] == current.value)
        blocks = [
            {
                "type": "input",
                "block_id": CAUSE_BLOCK,
                "label": {"type": "plain_text", "text": "Cause"},
                "element": select,
            },
            why,
        ]
        title = "Change cause"
    else:
        blocks = [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "Close this incident as *not an outage*. "
                    "Later alerts about it stop; the decision is logged.",
                },
            },
            why,
        ]
        title = "False alarm"
    return {
        "type": "modal",
        "callback_id": ACTION_PREFIX + req.action.value,
        "private_metadata": meta,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }
