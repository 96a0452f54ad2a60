"""What responders see of their own actions: who acknowledged or set the cause, the five buttons
(pollwatch.notify.interact receives them), and the draft statement posted into the thread."""

from __future__ import annotations

import json
import re
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, MarkdownTextObject, SectionBlock

from pollwatch.models import Incident
from pollwatch.notify.render.message import Message, cut, esc, incident_message, markdown_to_mrkdwn, md
from pollwatch.playbook import Watch
from pollwatch.words import CAUSE_WORDS

ACTION_PREFIX = "pollwatch:"  # action_id of the responder buttons: pollwatch:<pollwatch.responders.Action>


def who(r: dict[str, Any]) -> str:
    """A responder as a Slack mention when their user id is known, else their name (escaped)."""
    uid = str(r.get("user_id") or "")
    return f"<@{uid}>" if re.fullmatch(r"[UW][A-Z0-9]{2,20}", uid) else esc(str(r.get("by") or "a responder"))


def responders_text(inc: Incident) -> str:
    """Who acknowledged, who confirmed or set the cause, and a false alarm's closing (mrkdwn)."""
    parts = []
    if inc.acknowledged_by:
        parts.append(
            "acknowledged by "
            + ", ".join(who(r) for r in inc.acknowledged_by[:10])
            + (f" and {len(inc.acknowledged_by) - 10} more" if len(inc.acknowledged_by) > 10 else "")
        )
    if inc.override:
        prev = (inc.override.get("previous") or {}).get("cause")
        verb = "confirmed" if prev == inc.override.get("cause") else "set"
        parts.append(f"cause {verb} by {who(inc.override)} ({esc(CAUSE_WORDS.get(inc.cause, inc.cause.value))})")
    else:
        parts.append("cause not confirmed yet")
    if inc.false_alarm:
        parts.append(f"closed as a false alarm by {who(inc.false_alarm)}: {esc(str(inc.false_alarm.get('why') or ''))}")
    return "; ".join(parts)


def action_buttons(inc: Incident) -> ActionsBlock:
    """The responders' buttons (pollwatch.notify.interact receives them): the value
    names the incident and its version.
    """
    value = json.dumps({"incident": inc.id, "version": inc.version}, separators=(",", ":"))
    if inc.false_alarm:  # closed: only the draft statement is left to ask for
        labels = [("draft", "Draft statement", None)]
    else:
        labels = [
            ("acknowledge", "Acknowledge", "primary"),
            ("confirm", "Confirm cause", None),
            ("change_cause", "Change cause", None),
            ("false_alarm", "False alarm", "danger"),
            ("draft", "Draft statement", None),
        ]
    return ActionsBlock(
        block_id=f"respond-{inc.id}",
        elements=[
            ButtonElement(text=label, action_id=ACTION_PREFIX + action, value=value, style=style)
            for action, label, style in labels
        ],
    )


def draft_message(watch: Watch, inc: Incident, draft: str, *, key: str, requested_by: str) -> Message:
    """A thread reply with the draft public statement (`pollwatch brief`), to review before publishing."""
    lead = f":memo: *Draft statement* requested by {esc(requested_by)} — review before publishing"
    blocks: list[Block] = [SectionBlock(text=md(lead))]
    chunks = [""]
    for line in markdown_to_mrkdwn(draft).split("\n"):  # a section holds 3,000 characters: split between lines
        if len(chunks[-1]) + len(line) + 1 > 2900:
            chunks.append("")
        chunks[-1] += cut(line, 2900) + "\n"
    # a message holds 50 blocks
    blocks += [SectionBlock(text=MarkdownTextObject(text=c)) for c in chunks[:45] if c.strip()]
    text = f"Draft statement for incident {esc(inc.id)}:\n{esc(draft)}"
    return incident_message(watch, inc, blocks, text, key=key, role="draft", tag="DRAFT")
