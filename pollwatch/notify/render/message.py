"""A Slack message and its markup: `Message` (fallback text, Block Kit blocks, metadata), escaping outside text
for mrkdwn, the block helpers every message uses, the metadata pollwatch finds its posts by, and mentions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import Block, MarkdownTextObject

from pollwatch.models import Incident
from pollwatch.playbook import Watch
from pollwatch.words import headline

METADATA_EVENT = "pollwatch_alert"


@dataclass
class Message:
    """A Slack message: fallback text, Block Kit blocks (as dicts) and message metadata."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    # the console's first line, e.g. `[STARTED] Nationwide internet outage in KZ — watch (incident id)`
    headline: str | None = None

    def plain(self) -> str:
        """The blocks as plain text (what the console and plain webhooks show), after the headline."""
        lines: list[str] = [self.headline] if self.headline else []
        if not self.blocks:
            return "\n".join(lines + [_unmark(self.text)])
        for b in self.blocks:
            t = b.get("type")
            if t == "header":
                lines.append(b["text"]["text"])
            elif t == "section":
                if b.get("text"):
                    lines.append(_unmark(b["text"]["text"]))
                for f in b.get("fields", []):
                    lines.append("  " + _unmark(f["text"]).replace("\n", ": ", 1).replace("\n", "; "))
            elif t == "context":
                lines.append("  " + " · ".join(_unmark(e.get("text", "")) for e in b["elements"]))
            elif t == "actions":  # link buttons; the responders' buttons (no url) mean nothing on a console
                links = [f"{e['text']['text']}: {e['url']}" for e in b["elements"] if e.get("url")]
                if links:
                    lines.append("  links: " + " | ".join(links))
        return "\n".join(lines)


def _unmark(s: str) -> str:
    """mrkdwn to plain text: links `<url|label>` become `label (url)`, emphasis marks go."""
    s = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2 (\1)", s)
    s = re.sub(r"<!(here|channel|everyone)>", r"@\1", s)
    s = re.sub(r"<!subteam\^(\w+)>", r"@group:\1", s)
    s = re.sub(r"<@(\w+)>", r"@\1", s)
    return s.replace("*", "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def esc(s: object) -> str:
    """Outside text for any Slack field (mrkdwn or the `text` fallback): escape the three characters
    Slack treats as control characters, so `<!channel>` or `<https://x|click>` stay text, and turn
    backticks into U+02CB (mrkdwn cannot escape them; one would pair with a code span of ours)."""
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "\u02cb")


def code(s: object) -> str:
    """Outside text as an inline code span: without backticks (one would close the span) or line breaks."""
    inner = esc(str(s).replace("`", "").replace("\n", " ").replace("\r", " ")).strip()
    return f"`{inner or '-'}`"


def cut(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def mention_markup(mention: str | None) -> str | None:
    """Slack markup for the configured mention: `@here`, `@channel`, a user group `S…` or `subteam^S…`, a user `U…`."""
    if not mention:
        return None
    m = mention.strip()
    if m.lower() in ("@here", "here", "!here"):
        return "<!here>"
    if m.lower() in ("@channel", "channel", "!channel"):
        return "<!channel>"
    if m.startswith("<") and m.endswith(">"):
        return m
    m = m.lstrip("@")
    if m.startswith("subteam^") and m[8:].isalnum():
        return f"<!{m}>"
    if m[:1] == "S" and m[1:].isalnum() and m.isupper():
        return f"<!subteam^{m}>"
    if m[:1] in ("U", "W") and m[1:].isalnum() and m.isupper():
        return f"<@{m}>"
    return f"@{esc(m)}"  # a handle Slack may not resolve; shown as text


def md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=cut(text, 2900))


def field_text(label: str, value: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=cut(f"*{label}*\n{value}", 1990))


def as_dicts(blocks: list[Block]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]  # to_dict() validates against Block Kit's limits


def metadata(watch: Watch, *, key: str, role: str, incident_id: str | None = None) -> dict[str, Any]:
    """Message metadata: how pollwatch finds what it already posted (idempotency key, incident, role)."""
    payload = {"watch": watch.name, "idempotency_key": key, "role": role}
    if incident_id:
        payload["incident_id"] = incident_id
    return {"event_type": METADATA_EVENT, "event_payload": payload}


def markdown_to_mrkdwn(md: str) -> str:
    """The brief's Markdown as Slack mrkdwn: headings bold, Markdown's backslash escapes undone, `&<>` escaped."""
    out = []
    for line in md.splitlines():
        line = esc(re.sub(r"\\([\\`*_\[\]<>#|~])", r"\1", line))
        heading = re.match(r"#{1,6}\s+(.*)", line)
        out.append(f"*{heading.group(1).strip()}*" if heading else line)
    return "\n".join(out)


def incident_message(
    watch: Watch,
    inc: Incident,
    blocks: list[Block],
    text: str,
    *,
    key: str,
    role: str,
    tag: str,
    mention: str | None = None,
) -> Message:
    """A message about one incident: its fallback text (after the mention, if any), blocks, metadata (`role`: root,
    update, end, draft) and the console's head line (`tag`: STARTED, UPDATE, RESOLVED, DRAFT)."""
    return Message(
        text=cut(f"{mention} {text}" if mention else text, 3900),
        blocks=as_dicts(blocks),
        metadata=metadata(watch, key=key, role=role, incident_id=inc.id),
        headline=headline(watch, inc, tag),
    )
