"""What responders read: incident and notice messages in Slack Block Kit, with a text fallback.

One incident has one root message that always shows its current state (edited on every change)
and a thread of updates. Messages are built with slack_sdk's Block Kit models, so whatever this
module returns is accepted by them; `Message.plain()` gives the same content as plain text for
the console and for webhooks without Block Kit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pycountry
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from pollwatch.models import Anomaly, Cause, Direction, Incident, IncidentKind, Notice, iso
from pollwatch.playbook import Watch

IODA_DASHBOARD = "https://ioda.inetintel.cc.gatech.edu"
OONI_EXPLORER = "https://explorer.ooni.org"
METADATA_EVENT = "pollwatch_alert"
ACTION_PREFIX = "pollwatch:"  # action_id of the responder buttons: pollwatch:<pollwatch.responders.Action>

KIND_TITLES = {
    IncidentKind.nationwide_outage: "Nationwide internet outage",
    IncidentKind.regional_outage: "Regional internet outage",
    IncidentKind.network_outage: "Network outage",
    IncidentKind.service_block: "Service blocked",
    IncidentKind.circumvention_block: "Circumvention tools blocked",
    IncidentKind.throttling: "Throttling",
}
CAUSE_WORDS = {
    Cause.government_directed: "government-directed shutdown",
    Cause.power_outage: "power outage",
    Cause.cable_cut: "cable cut",
    Cause.weather_or_disaster: "weather or disaster",
    Cause.technical: "technical failure",
    Cause.unknown: "unknown",
}
_RISE_KINDS = {IncidentKind.service_block, IncidentKind.circumvention_block, IncidentKind.throttling}


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
            elif t == "actions":
                lines.append(
                    "  links: " + " | ".join(f"{e['text']['text']}: {e['url']}" for e in b["elements"] if e.get("url"))
                )
        return "\n".join(lines)


def _unmark(s: str) -> str:
    """mrkdwn to plain text: links `<url|label>` become `label (url)`, emphasis marks go."""
    import re

    s = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2 (\1)", s)
    s = re.sub(r"<!(here|channel|everyone)>", r"@\1", s)
    s = re.sub(r"<!subteam\^(\w+)>", r"@group:\1", s)
    s = re.sub(r"<@(\w+)>", r"@\1", s)
    return s.replace("*", "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _esc(s: object) -> str:
    """Outside text for any Slack field (mrkdwn or the `text` fallback): escape the three characters
    Slack treats as control characters, so `<!channel>` or `<https://x|click>` stay text, and turn
    backticks into U+02CB (mrkdwn cannot escape them; one would pair with a code span of ours)."""
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "\u02cb")


def _code(s: object) -> str:
    """Outside text as an inline code span: without backticks (one would close the span) or line breaks."""
    inner = _esc(str(s).replace("`", "").replace("\n", " ").replace("\r", " ")).strip()
    return f"`{inner or '-'}`"


def _cut(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def country_name(code: str) -> str:
    c = pycountry.countries.get(alpha_2=code)
    return getattr(c, "common_name", None) or (c.name if c else code)


def fmt_when(watch: Watch, dt: datetime | None) -> str:
    """`2019-06-09 05:00 UTC (11:00 ALMT, election day)`: UTC first, then the election's local time."""
    if dt is None:
        return "ongoing"
    local = dt.astimezone(watch.tz)
    day = ""
    if watch.election_date is not None:
        delta = (local.date() - watch.election_date).days
        day = ", election day" if delta == 0 else f", E{delta:+d}d"
    same_day = local.date() == dt.date()
    local_txt = f"{local:%H:%M}" if same_day else f"{local:%Y-%m-%d %H:%M}"
    return f"{dt:%Y-%m-%d %H:%M} UTC ({local_txt} {watch.local_label(dt)}{day})"


def reach_words(share: float) -> str:
    """How many people an incident reaches, in words, from its measured share of the country
    (address space, providers or regions): `most users` from 60 %, `many users` from 30 %, else
    `some networks`."""
    if share >= 0.6:
        return "most users"
    if share >= 0.3:
        return "many users"
    return "some networks"


def fmt_duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


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
    return f"@{_esc(m)}"  # a handle Slack may not resolve; shown as text


# --- links -----------------------------------------------------------------------------------


def _window(inc: Incident) -> tuple[datetime, datetime]:
    end = inc.end or inc.updated_at
    return inc.start - timedelta(hours=6), end + timedelta(hours=2)


def ioda_link(inc: Incident) -> str:
    """The IODA dashboard for the incident's entity (its one network, else the country) over its window."""
    start, end = _window(inc)
    q = urlencode({"from": int(start.timestamp()), "until": int(end.timestamp())})
    if len(inc.scope.asns) == 1 and inc.kind is IncidentKind.network_outage:
        return f"{IODA_DASHBOARD}/asn/{inc.scope.asns[0]}?{q}"
    return f"{IODA_DASHBOARD}/country/{inc.country}?{q}"


def ooni_link(watch: Watch, inc: Incident) -> str:
    """OONI Explorer's measurement aggregation chart for the country, network and test of the incident."""
    start, end = _window(inc)
    params: dict[str, str] = {"probe_cc": inc.country}
    if len(inc.scope.asns) == 1:
        params["probe_asn"] = f"AS{inc.scope.asns[0]}"
    services = {s.name: s for s in watch.services + watch.circumvention}
    test, domain = "web_connectivity", None
    for name in inc.scope.services:
        svc = services.get(name)
        if svc is not None:
            test = svc.test
            domain = svc.domains[0] if svc.domains and svc.test == "web_connectivity" else None
            break
    params["test_name"] = test
    if domain:
        params["domain"] = domain
    params.update(
        {
            "since": f"{start:%Y-%m-%d}",
            "until": f"{end + timedelta(days=1):%Y-%m-%d}",
            "time_grain": "hour",
            "axis_x": "measurement_start_day",
            "axis_y": "probe_asn",
        }
    )
    return f"{OONI_EXPLORER}/chart/mat?{urlencode(params)}"


# --- pieces ----------------------------------------------------------------------------------


def scope_text(watch: Watch, inc: Incident) -> str:
    parts = []
    if inc.scope.asns:
        parts.append("providers: " + ", ".join(f"{watch.provider_name(a)} (AS{a})" for a in inc.scope.asns))
    elif inc.scope.providers:
        parts.append("providers: " + ", ".join(inc.scope.providers))
    if inc.scope.regions:
        names = {r.code: r.name for r in watch.regions}
        parts.append("regions: " + ", ".join(f"{names[r]} ({r})" if r in names else r for r in inc.scope.regions))
    if inc.scope.services:
        parts.append("services: " + ", ".join(watch.service_label(x) for x in inc.scope.services))
    if inc.scope.network_types:
        parts.append("networks: " + "/".join(inc.scope.network_types))
    if inc.scope.share:
        parts.append(f"{reach_words(inc.scope.share)} ({inc.scope.share:.0%} of the country measured)")
    if inc.scope.recovered and inc.end is None:
        parts.append("back to normal: " + ", ".join(inc.scope.recovered))
    return "; ".join(parts) or "whole country"


def _num(x: float | None) -> str:
    if x is None:
        return "?"
    if abs(x) < 10:
        return f"{x:.2f}"
    return f"{x:,.0f}"


def current_depth(a: Anomaly) -> float | None:
    """The change the anomaly's latest point shows against its expectation, in its depth's units."""
    if a.observed is None or a.expected is None:
        return None
    if a.direction is Direction.drop:
        return max(0.0, 1 - a.observed / a.expected) if a.expected > 0 else None
    if a.evidence.get("mode") == "delta":
        return max(0.0, a.observed - a.expected)
    return max(0.0, a.observed / a.expected - 1) if a.expected > 0 else None


def depth_lines(inc: Incident, anomalies: list[Anomaly]) -> list[str]:
    """Per signal, the deepest anomaly: its latest value versus expected with that change, and its deepest change
    (so the numbers shown and the % beside them agree)."""
    best: dict[str, Anomaly] = {}
    for a in anomalies:
        cur = best.get(a.signal)
        if cur is None or (a.entity.level == "country", a.depth) > (cur.entity.level == "country", cur.depth):
            best[a.signal] = a
    lines = []
    for sig, a in sorted(best.items(), key=lambda kv: -kv[1].depth):
        word = "drop" if a.direction is Direction.drop else "rise"
        sign = "−" if a.direction is Direction.drop else "+"
        now = current_depth(a)
        line = f"{sig} ({a.entity.key}): {_num(a.observed)} vs {_num(a.expected)} expected"
        if now is not None:
            line += f" ({sign}{now:.0%})"
        if now is None or round(now, 2) != round(a.depth, 2):
            line += f", deepest {word} {sign}{a.depth:.0%}"
        lines.append(line)
    if not lines:
        word = "rise" if inc.kind in _RISE_KINDS else "drop"
        lines.append(f"{word} {inc.depth:.0%} against the baseline")
    return lines


def cause_text(inc: Incident) -> str:
    txt = f"{CAUSE_WORDS[inc.cause]} (confidence {inc.cause_confidence:.0%})"
    if inc.override:
        who, why = inc.override.get("by", "a responder"), inc.override.get("why", "")
        txt += f" — set by {who}" + (f": {why}" if why else "")
    return txt


def top_evidence(inc: Incident, n: int = 3) -> list[str]:
    """The strongest evidence for the cause, then what could not be judged (evidence the watch lacks data for)."""
    judged = [e for e in inc.evidence if not e.numbers.get("not_judged")]
    ranked = sorted(judged, key=lambda e: (e.supports != inc.cause, -e.weight))
    return [e.detail for e in ranked[:n]] + [
        f"not judged: {e.detail}" for e in inc.evidence if e.numbers.get("not_judged")
    ]


def _md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=_cut(text, 2900))


def _field(label: str, value: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=_cut(f"*{label}*\n{value}", 1990))


def _blocks(blocks: list[Block]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]  # to_dict() validates against Block Kit's limits


def metadata(watch: Watch, *, key: str, role: str, incident_id: str | None = None) -> dict[str, Any]:
    """Message metadata: how pollwatch finds what it already posted (idempotency key, incident, role)."""
    payload = {"watch": watch.name, "idempotency_key": key, "role": role}
    if incident_id:
        payload["incident_id"] = incident_id
    return {"event_type": METADATA_EVENT, "event_payload": payload}


@dataclass
class Links:
    flow_run_url: str | None = None


def headline(watch: Watch, inc: Incident, tag: str) -> str:
    """`[STARTED] Nationwide internet outage in KZ — kz-2019-presidential (incident 3f2a...)`, with the services of a
    block named (`Service blocked in KZ: Periscope — ...`): pollwatch.alerts' head line."""
    what = f"{KIND_TITLES[inc.kind]} in {inc.country}"
    if inc.scope.services:
        what += ": " + ", ".join(watch.service_label(x) for x in inc.scope.services)
    return f"[{tag}] {what} — {watch.name} (incident {inc.id})"


def _title(inc: Incident) -> str:
    emoji = ":white_check_mark:" if inc.status == "resolved" else ":red_circle:"
    state = "RESOLVED" if inc.status == "resolved" else "ONGOING"
    if inc.false_alarm:
        emoji, state = ":white_check_mark:", "CLOSED (false alarm)"
    return f"{emoji} {state}: {KIND_TITLES[inc.kind]} in {country_name(inc.country)} ({inc.country})"


def _link_buttons(watch: Watch, inc: Incident, links: Links) -> ActionsBlock:
    buttons = [
        ButtonElement(text="IODA dashboard", url=ioda_link(inc), action_id=f"ioda-{inc.id}"),
        ButtonElement(text="OONI Explorer", url=ooni_link(watch, inc), action_id=f"ooni-{inc.id}"),
    ]
    if links.flow_run_url:
        buttons.append(ButtonElement(text="Prefect flow run", url=links.flow_run_url, action_id=f"prefect-{inc.id}"))
    return ActionsBlock(elements=buttons, block_id=f"links-{inc.id}")


def _who(r: dict[str, Any]) -> str:
    """A responder as a Slack mention when their user id is known, else their name (escaped)."""
    uid = str(r.get("user_id") or "")
    return f"<@{uid}>" if re.fullmatch(r"[UW][A-Z0-9]{2,20}", uid) else _esc(str(r.get("by") or "a responder"))


def responders_text(inc: Incident) -> str:
    """Who acknowledged, who confirmed or set the cause, and a false alarm's closing (mrkdwn)."""
    parts = []
    if inc.acknowledged_by:
        parts.append(
            "acknowledged by "
            + ", ".join(_who(r) for r in inc.acknowledged_by[:10])
            + (f" and {len(inc.acknowledged_by) - 10} more" if len(inc.acknowledged_by) > 10 else "")
        )
    if inc.override:
        prev = (inc.override.get("previous") or {}).get("cause")
        verb = "confirmed" if prev == inc.override.get("cause") else "set"
        parts.append(f"cause {verb} by {_who(inc.override)} ({_esc(CAUSE_WORDS.get(inc.cause, inc.cause.value))})")
    else:
        parts.append("cause not confirmed yet")
    if inc.false_alarm:
        parts.append(
            f"closed as a false alarm by {_who(inc.false_alarm)}: {_esc(str(inc.false_alarm.get('why') or ''))}"
        )
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


def root_message(
    watch: Watch,
    inc: Incident,
    *,
    key: str,
    anomalies: list[Anomaly] = (),
    links: Links | None = None,
    mention: str | None = None,
) -> Message:
    """The incident's root message: its whole current state (edited as the incident changes)."""
    links = links or Links()
    header = _title(inc)
    emoji_free = header.split(" ", 1)[1]
    when = f"{fmt_when(watch, inc.start)}"
    if inc.end is not None:
        when += f"\nended {fmt_when(watch, inc.end)}, after {fmt_duration(inc.end - inc.start)}"
    lead = f"*{KIND_TITLES[inc.kind]}* in {_esc(country_name(inc.country))} — watch {_code(watch.name)}"
    if mention:
        lead = f"{mention} {lead}"
    fields = [
        _field("Scope", _esc(scope_text(watch, inc))),
        _field("Started" if inc.end is None else "Window", when),
        _field("Depth (current vs expected)", _esc("\n".join(depth_lines(inc, list(anomalies))[:4]))),
        _field("Signals in agreement", _esc(", ".join(inc.scope.signals)) or "—"),
        _field("Likely cause", _esc(cause_text(inc))),
        _field("Severity", f"{inc.severity_index}/100, {inc.severity_band} (IODA score {inc.severity:,.0f})"),
    ]
    blocks: list[Block] = [
        HeaderBlock(
            text=PlainTextObject(
                text=_cut(header.replace(":red_circle:", "🔴").replace(":white_check_mark:", "✅"), 150)
            )
        ),
        SectionBlock(text=_md(lead), fields=fields),
    ]
    evidence = top_evidence(inc)
    if evidence:
        blocks.append(SectionBlock(text=_md("*Evidence*\n" + "\n".join(f"• {_esc(e)}" for e in evidence))))
    blocks.append(SectionBlock(text=_md(f"*Responders*: {responders_text(inc)}")))
    blocks.append(_link_buttons(watch, inc, links))
    blocks.append(action_buttons(inc))
    blocks.append(
        ContextBlock(
            elements=[
                _md(f"incident {_code(inc.id)} · version {inc.version} · updated {iso(inc.updated_at)} · pollwatch")
            ]
        )
    )
    text = (
        f"{_esc(emoji_free)} — {_esc(scope_text(watch, inc))}; since {fmt_when(watch, inc.start)}; "
        f"{_esc(depth_lines(inc, list(anomalies))[0])}; cause {_esc(cause_text(inc))}"
    )
    if mention:
        text = f"{mention} {text}"
    return Message(
        text=_cut(text, 3900),
        blocks=_blocks(blocks),
        metadata=metadata(watch, key=key, role="root", incident_id=inc.id),
        headline=headline(watch, inc, "STARTED"),
    )


def update_message(
    watch: Watch,
    inc: Incident,
    *,
    key: str,
    reasons: list[str],
    held: list[list[str]] = (),
    anomalies: list[Anomaly] = (),
    mention: str | None = None,
) -> Message:
    """A thread reply for a change: what changed, and the state after it."""
    why = "; ".join(reasons) or "details changed"
    lead = f":arrows_counterclockwise: *Update* — {_esc(why)}"
    if mention:
        lead = f"{mention} {lead}"
    blocks: list[Block] = [
        SectionBlock(
            text=_md(lead),
            fields=[
                _field("Now", f"{KIND_TITLES[inc.kind]}"),
                _field("Scope", _esc(scope_text(watch, inc))),
                _field("Depth", _esc(depth_lines(inc, list(anomalies))[0])),
                _field("Likely cause", _esc(cause_text(inc))),
            ],
        )
    ]
    if held:
        earlier = ["; ".join(r) or "details changed" for r in held]
        blocks.append(
            ContextBlock(
                elements=[
                    _md(
                        f"Also changed since the last update ({len(held)} batched by the "
                        f"{watch.alerts.max_updates_per_hour}/hour limit): " + _esc(" | ".join(earlier))
                    )
                ]
            )
        )
    blocks.append(action_buttons(inc))
    text = f"Update: {KIND_TITLES[inc.kind]} in {_esc(inc.country)} — {_esc(why)}"
    if mention:
        text = f"{mention} {text}"
    return Message(
        text=_cut(text, 3900),
        blocks=_blocks(blocks),
        metadata=metadata(watch, key=key, role="update", incident_id=inc.id),
        headline=headline(watch, inc, "UPDATE"),
    )


def end_message(watch: Watch, inc: Incident, *, key: str, held: list[list[str]] = ()) -> Message:
    """The thread reply that closes an incident: recovery (or unblock) with its duration."""
    end = inc.end or inc.updated_at
    dur = fmt_duration(end - inc.start)
    word = "Unblocked" if inc.kind in (IncidentKind.service_block, IncidentKind.circumvention_block) else "Recovered"
    lead = f":white_check_mark: *{word}* — {KIND_TITLES[inc.kind]} in {_esc(country_name(inc.country))} lasted *{dur}*"
    if inc.false_alarm:
        word = "Closed as a false alarm"
        lead = (
            f":white_check_mark: *{word}* by {_who(inc.false_alarm)} — not an outage: "
            f"{_esc(str(inc.false_alarm.get('why') or ''))}"
        )
    blocks: list[Block] = [
        SectionBlock(
            text=_md(lead),
            fields=[
                _field("From", fmt_when(watch, inc.start)),
                _field("To", fmt_when(watch, end)),
                _field("Scope", _esc(scope_text(watch, inc))),
                _field("Likely cause", _esc(cause_text(inc))),
            ],
        )
    ]
    if held:
        earlier = ["; ".join(r) or "details changed" for r in held]
        blocks.append(ContextBlock(elements=[_md("Also changed before the end: " + _esc(" | ".join(earlier)))]))
    text = (
        f"{word}: {KIND_TITLES[inc.kind]} in {_esc(inc.country)} ended after {dur} "
        f"({fmt_when(watch, inc.start)} to {fmt_when(watch, end)})"
    )
    return Message(
        text=_cut(text, 3900),
        blocks=_blocks(blocks),
        metadata=metadata(watch, key=key, role="end", incident_id=inc.id),
        headline=headline(watch, inc, "RESOLVED"),
    )


def markdown_to_mrkdwn(md: str) -> str:
    """The brief's Markdown as Slack mrkdwn: headings bold, Markdown's backslash escapes undone, `&<>` escaped."""
    out = []
    for line in md.splitlines():
        line = _esc(re.sub(r"\\([\\`*_\[\]<>#|~])", r"\1", line))
        heading = re.match(r"#{1,6}\s+(.*)", line)
        out.append(f"*{heading.group(1).strip()}*" if heading else line)
    return "\n".join(out)


def draft_message(watch: Watch, inc: Incident, draft: str, *, key: str, requested_by: str) -> Message:
    """A thread reply with the draft public statement (`pollwatch brief`), to review before publishing."""
    lead = f":memo: *Draft statement* requested by {_esc(requested_by)} — review before publishing"
    blocks: list[Block] = [SectionBlock(text=_md(lead))]
    chunks = [""]
    for line in markdown_to_mrkdwn(draft).split("\n"):  # a section holds 3,000 characters: split between lines
        if len(chunks[-1]) + len(line) + 1 > 2900:
            chunks.append("")
        chunks[-1] += _cut(line, 2900) + "\n"
    # a message holds 50 blocks
    blocks += [SectionBlock(text=MarkdownTextObject(text=c)) for c in chunks[:45] if c.strip()]
    return Message(
        text=_cut(f"Draft statement for incident {_esc(inc.id)}:\n{_esc(draft)}", 3900),
        blocks=_blocks(blocks),
        metadata=metadata(watch, key=key, role="draft", incident_id=inc.id),
        headline=headline(watch, inc, "DRAFT"),
    )


NOTICE_EMOJI = {"info": ":information_source:", "warning": ":warning:", "error": ":rotating_light:"}


def notice_message(watch: Watch, notice: Notice, *, key: str) -> Message:
    """An operator notice for the ops channel (source down, data gap, vantage offline, Slack trouble)."""
    emoji = NOTICE_EMOJI.get(notice.level.value, ":warning:")
    lead = f"{emoji} *{notice.level.value.upper()}* {_code(notice.source)} — {_esc(notice.message)}"
    blocks: list[Block] = [
        SectionBlock(text=_md(lead)),
        ContextBlock(
            elements=[
                _md(f"watch {_code(notice.watch or watch.name)} · {fmt_when(watch, notice.time)} · operator notice")
            ]
        ),
    ]
    text = f"[{notice.level.value}] {_esc(notice.source)}: {_esc(notice.message)}"
    return Message(
        text=_cut(text, 3900),
        blocks=_blocks(blocks),
        metadata=metadata(watch, key=key, role="notice"),
        headline=f"[NOTICE] {notice.source}: {notice.level.value}",
    )
