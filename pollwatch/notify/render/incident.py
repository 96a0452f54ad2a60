"""An incident's messages: the root message (its whole current state, edited on every change), a thread update,
and the end; with the buttons that link to IODA's dashboard, OONI Explorer and the Prefect flow run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    PlainTextObject,
    SectionBlock,
)

from pollwatch.models import Anomaly, Incident, IncidentKind, iso
from pollwatch.notify.render.message import Message, code, cut, esc, field_text, incident_message, md
from pollwatch.notify.render.responses import action_buttons, responders_text, who
from pollwatch.playbook import Watch
from pollwatch.words import (
    KIND_TITLES,
    cause_text,
    country_name,
    depth_lines,
    fmt_duration,
    fmt_when,
    pattern_text,
    scope_text,
    top_evidence,
)

IODA_DASHBOARD = "https://ioda.inetintel.cc.gatech.edu"
OONI_EXPLORER = "https://explorer.ooni.org"


@dataclass
class Links:
    flow_run_url: str | None = None


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
    lead = f"*{KIND_TITLES[inc.kind]}* in {esc(country_name(inc.country))} — watch {code(watch.name)}"
    if mention:
        lead = f"{mention} {lead}"
    fields = [
        field_text("Scope", esc(scope_text(watch, inc))),
        field_text("Started" if inc.end is None else "Window", when),
        field_text("Depth (current vs expected)", esc("\n".join(depth_lines(inc, list(anomalies))[:4]))),
        field_text("Signals in agreement", esc(", ".join(inc.scope.signals)) or "—"),
        field_text("Likely cause", esc(cause_text(inc))),
        field_text("Severity", f"{inc.severity_index}/100, {inc.severity_band} (IODA score {inc.severity:,.0f})"),
    ]
    if (recurring := pattern_text(inc)) is not None:
        fields.append(field_text("Schedule", esc(recurring)))
    blocks: list[Block] = [
        HeaderBlock(
            text=PlainTextObject(
                text=cut(header.replace(":red_circle:", "🔴").replace(":white_check_mark:", "✅"), 150)
            )
        ),
        SectionBlock(text=md(lead), fields=fields),
    ]
    evidence = top_evidence(inc)
    if evidence:
        blocks.append(SectionBlock(text=md("*Evidence*\n" + "\n".join(f"• {esc(e)}" for e in evidence))))
    blocks.append(SectionBlock(text=md(f"*Responders*: {responders_text(inc)}")))
    blocks.append(_link_buttons(watch, inc, links))
    blocks.append(action_buttons(inc))
    blocks.append(
        ContextBlock(
            elements=[
                md(f"incident {code(inc.id)} · version {inc.version} · updated {iso(inc.updated_at)} · pollwatch")
            ]
        )
    )
    text = (
        f"{esc(emoji_free)} — {esc(scope_text(watch, inc))}; since {fmt_when(watch, inc.start)}; "
        f"{esc(depth_lines(inc, list(anomalies))[0])}; cause {esc(cause_text(inc))}"
    )
    return incident_message(watch, inc, blocks, text, key=key, role="root", tag="STARTED", mention=mention)


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
    lead = f":arrows_counterclockwise: *Update* — {esc(why)}"
    if mention:
        lead = f"{mention} {lead}"
    blocks: list[Block] = [
        SectionBlock(
            text=md(lead),
            fields=[
                field_text("Now", f"{KIND_TITLES[inc.kind]}"),
                field_text("Scope", esc(scope_text(watch, inc))),
                field_text("Depth", esc(depth_lines(inc, list(anomalies))[0])),
                field_text("Likely cause", esc(cause_text(inc))),
            ],
        )
    ]
    if held:
        earlier = ["; ".join(r) or "details changed" for r in held]
        blocks.append(
            ContextBlock(
                elements=[
                    md(
                        f"Also changed since the last update ({len(held)} batched by the "
                        f"{watch.alerts.max_updates_per_hour}/hour limit): " + esc(" | ".join(earlier))
                    )
                ]
            )
        )
    blocks.append(action_buttons(inc))
    text = f"Update: {KIND_TITLES[inc.kind]} in {esc(inc.country)} — {esc(why)}"
    return incident_message(watch, inc, blocks, text, key=key, role="update", tag="UPDATE", mention=mention)


def end_message(watch: Watch, inc: Incident, *, key: str, held: list[list[str]] = ()) -> Message:
    """The thread reply that closes an incident: recovery (or unblock) with its duration."""
    end = inc.end or inc.updated_at
    dur = fmt_duration(end - inc.start)
    word = "Unblocked" if inc.kind in (IncidentKind.service_block, IncidentKind.circumvention_block) else "Recovered"
    lead = f":white_check_mark: *{word}* — {KIND_TITLES[inc.kind]} in {esc(country_name(inc.country))} lasted *{dur}*"
    if inc.false_alarm:
        word = "Closed as a false alarm"
        lead = (
            f":white_check_mark: *{word}* by {who(inc.false_alarm)} — not an outage: "
            f"{esc(str(inc.false_alarm.get('why') or ''))}"
        )
    blocks: list[Block] = [
        SectionBlock(
            text=md(lead),
            fields=[
                field_text("From", fmt_when(watch, inc.start)),
                field_text("To", fmt_when(watch, end)),
                field_text("Scope", esc(scope_text(watch, inc))),
                field_text("Likely cause", esc(cause_text(inc))),
            ],
        )
    ]
    if held:
        earlier = ["; ".join(r) or "details changed" for r in held]
        blocks.append(ContextBlock(elements=[md("Also changed before the end: " + esc(" | ".join(earlier)))]))
    text = (
        f"{word}: {KIND_TITLES[inc.kind]} in {esc(inc.country)} ended after {dur} "
        f"({fmt_when(watch, inc.start)} to {fmt_when(watch, end)})"
    )
    return incident_message(watch, inc, blocks, text, key=key, role="end", tag="RESOLVED")
