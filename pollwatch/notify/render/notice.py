"""An operator notice for the ops channel (source down, data gap, vantage offline, Slack trouble)."""

from __future__ import annotations

from slack_sdk.models.blocks import Block, ContextBlock, SectionBlock

from pollwatch.models import Notice
from pollwatch.notify.render.message import Message, as_dicts, code, cut, esc, md, metadata
from pollwatch.playbook import Watch
from pollwatch.words import fmt_when

NOTICE_EMOJI = {"info": ":information_source:", "warning": ":warning:", "error": ":rotating_light:"}


def notice_message(watch: Watch, notice: Notice, *, key: str) -> Message:
    """An operator notice for the ops channel (source down, data gap, vantage offline, Slack trouble)."""
    emoji = NOTICE_EMOJI.get(notice.level.value, ":warning:")
    lead = f"{emoji} *{notice.level.value.upper()}* {code(notice.source)} — {esc(notice.message)}"
    blocks: list[Block] = [
        SectionBlock(text=md(lead)),
        ContextBlock(
            elements=[
                md(f"watch {code(notice.watch or watch.name)} · {fmt_when(watch, notice.time)} · operator notice")
            ]
        ),
    ]
    text = f"[{notice.level.value}] {esc(notice.source)}: {esc(notice.message)}"
    return Message(
        text=cut(text, 3900),
        blocks=as_dicts(blocks),
        metadata=metadata(watch, key=key, role="notice"),
        headline=f"[NOTICE] {notice.source}: {notice.level.value}",
    )
