"""Alerts: incident events turned into notifications.

Each incident event becomes one Alert with an idempotency key `(incident, event, version)`, so a
retried tick produces the same alert and the outbox (pollwatch.outbox.enqueue_alerts) keeps it
once. Delivery is pollwatch.notify's: Slack, a webhook, or the console with the same content.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pollwatch.models import Alert, Incident, IncidentEvent, stable_id
from pollwatch.playbook import Watch
from pollwatch.words import (
    RISE_KINDS,
    cause_text,
    fmt_duration,
    fmt_when,
    headline,
    pattern_text,
    scope_text,
    top_evidence,
)

EVENT_NAMES = {"opened": "start", "updated": "update", "resolved": "end"}


def render_text(watch: Watch, event: IncidentEvent) -> str:
    """The plain-text alert (the console's, and what a replay records): times in UTC and local time,
    providers by name, how many users from the measured share, the cause with its confidence."""
    inc = event.incident
    name = EVENT_NAMES.get(event.change, event.change)
    head = {"start": "STARTED", "update": "UPDATE", "end": "RESOLVED"}[name]
    lines = [headline(watch, inc, head)]
    lines.append(f"  scope: {scope_text(watch, inc)}")
    lines.append(f"  start: {fmt_when(watch, inc.start)}")
    if name == "end" and inc.end is not None:
        lines.append(f"  end: {fmt_when(watch, inc.end)}; lasted {fmt_duration(inc.end - inc.start)}")
    depth_word = "rise" if inc.kind in RISE_KINDS else "drop"
    lines.append(
        f"  deepest {depth_word}: {inc.depth:.0%}; signals: {', '.join(inc.scope.signals) or '-'}; "
        f"severity {inc.severity_index}/100 ({inc.severity_band})"
    )
    lines.append(f"  cause: {cause_text(inc)}")
    for detail in top_evidence(inc):
        lines.append(f"    - {detail}")
    if (recurring := pattern_text(inc)) is not None:
        lines.append(f"  {recurring}")
    # a start is explained only when it comes after the incident was detected (a later cut split off a pair)
    if event.reasons and (name != "start" or event.tick > inc.detected_at):
        lines.append("  why this alert: " + "; ".join(event.reasons))
    return "\n".join(lines)


def build_alerts(watch: Watch, events: Sequence[IncidentEvent]) -> list[Alert]:
    """One alert per incident event, to the watch's channel, keyed for exactly-once delivery."""
    return [
        incident_alert(
            watch,
            ev.incident,
            EVENT_NAMES.get(ev.change, ev.change),
            ev.tick,
            render_text(watch, ev),
            {"change": ev.change, "reasons": ev.reasons, "incident": ev.incident.model_dump(mode="json")},
        )
        for ev in events
    ]


def incident_alert(watch: Watch, inc: Incident, event: str, at: datetime, text: str, payload: dict[str, Any]) -> Alert:
    """An outbox alert about one incident to the watch's channel, keyed `watch:incident:event:version`: a retried
    tick (or a repeated responder action) makes the same alert, and the outbox keeps it once."""
    key = f"{watch.name}:{inc.id}:{event}:{inc.version}"
    return Alert(
        id=stable_id(key),
        watch=watch.name,
        incident_id=inc.id,
        event=event,
        sequence=inc.version,
        destination=watch.alerts.channel,
        idempotency_key=key,
        created_at=at,
        text=text,
        payload=payload,
    )
