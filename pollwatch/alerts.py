"""Alerts: incident events turned into notifications.

Each incident event becomes one Alert with an idempotency key `(incident, event, version)`, so a
retried tick produces the same alert and the outbox (pollwatch.outbox.enqueue_alerts) keeps it
once. Delivery is pollwatch.notify's: Slack, a webhook, or the console with the same content.
"""

from __future__ import annotations

from collections.abc import Sequence

from pollwatch.models import Alert, Incident, IncidentEvent, stable_id
from pollwatch.playbook import Watch
from pollwatch.words import KIND_TITLES as KIND_TITLES  # pollwatch.report imports it from here until it moves
from pollwatch.words import RISE_KINDS, cause_text, fmt_duration, fmt_when, headline, scope_text, top_evidence

EVENT_NAMES = {"opened": "start", "updated": "update", "resolved": "end"}


def scope_line(inc: Incident) -> str:
    parts = []
    if inc.scope.providers:
        parts.append("providers: " + ", ".join(f"{n} (AS{a})" for n, a in zip(inc.scope.providers, inc.scope.asns)))
    if inc.scope.regions:
        parts.append("regions: " + ", ".join(inc.scope.regions))
    if inc.scope.services:
        parts.append("services: " + ", ".join(inc.scope.services))
    if inc.scope.network_types:
        parts.append("networks: " + "/".join(inc.scope.network_types))
    if inc.scope.recovered and inc.end is None:
        parts.append("back to normal: " + ", ".join(inc.scope.recovered))
    return "; ".join(parts) or "whole country"


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
    if inc.pattern is not None:
        lines.append(
            f"  recurring: {inc.pattern.episodes} episodes, {inc.pattern.period} {inc.pattern.window} "
            f"({inc.pattern.timezone})"
        )
    if event.reasons and name != "start":
        lines.append("  why this alert: " + "; ".join(event.reasons))
    return "\n".join(lines)


def build_alerts(watch: Watch, events: Sequence[IncidentEvent]) -> list[Alert]:
    """One alert per incident event, to the watch's channel, keyed for exactly-once delivery."""
    alerts = []
    for ev in events:
        inc = ev.incident
        name = EVENT_NAMES.get(ev.change, ev.change)
        key = f"{watch.name}:{inc.id}:{name}:{inc.version}"
        alerts.append(
            Alert(
                id=stable_id(key),
                watch=watch.name,
                incident_id=inc.id,
                event=name,
                sequence=inc.version,
                destination=watch.alerts.channel,
                idempotency_key=key,
                created_at=ev.tick,
                text=render_text(watch, ev),
                payload={"change": ev.change, "reasons": ev.reasons, "incident": inc.model_dump(mode="json")},
            )
        )
    return alerts
