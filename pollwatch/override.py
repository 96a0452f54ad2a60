"""A responder confirms or overrides an incident's attribution (the CLI and the review flow both call this).

The override is kept on the incident (`Incident.override`: cause, by, why, at, and the
attribution it replaced) in the incident's row, written to the audit log in the same
transaction, and announced: an `update` alert for the incident goes into the outbox at once, and
every later alert for it shows the override (attribution carries it forward from the store).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pollwatch import audit, outbox, store
from pollwatch.alerts import build_alerts
from pollwatch.attribute import apply_override
from pollwatch.models import Alert, Cause, Incident, IncidentEvent
from pollwatch.playbook import PlaybookError, Watch, find_watch, load_watch


class OverrideError(ValueError):
    """The override could not be applied (unknown cause, ambiguous id, missing who/why)."""


class UnknownIncident(OverrideError):
    """No incident with that id (or id prefix) in the store."""


def find_incident(session: object, incident: str) -> Incident:
    """An incident by id, or by a unique id prefix (as responders copy it from an alert)."""
    found = store.get_incident(session, incident)  # type: ignore[arg-type]
    if found is not None:
        return found
    matches = [i for i in store.list_incidents(session) if i.id.startswith(incident)] if len(incident) >= 4 else []  # type: ignore[arg-type]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise OverrideError(f"incident id {incident!r} is ambiguous: {', '.join(i.id for i in matches[:5])}")
    raise UnknownIncident(f"no incident {incident!r} in the store (list them with `pollwatch audit incidents`)")


def watch_for(name: str) -> Watch | None:
    try:
        return load_watch(find_watch(name))
    except PlaybookError:
        return None


def override_incident(
    incident: str,
    cause: Cause | str,
    who: str,
    why: str,
    *,
    at: datetime | None = None,
    watch: Watch | None = None,
    url: str | None = None,
) -> tuple[Incident, list[Alert]]:
    """Set the incident's cause on a responder's word; return the incident and the alert queued for it.

    `watch` renders the alert (default: the watch the incident belongs to, looked up by name);
    when it cannot be found the override is still recorded, and the next alert shows it.
    """
    try:
        cause = Cause(cause)
    except ValueError:
        raise OverrideError(f"unknown cause {cause!r}: expected one of {', '.join(c.value for c in Cause)}") from None
    if not who.strip() or not why.strip():
        raise OverrideError("an override needs who made it (--by) and why (--why)")
    at = (at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    with store.session_scope(url) as s:
        return override_in_session(s, find_incident(s, incident), cause, who.strip(), why.strip(), at, watch=watch)


def _set_cause(
    s: Any, incident_id: str, cause: Cause, who: str, why: str, at: datetime, details: dict | None
) -> Incident:
    """The cause saved on the incident as stored now (later ticks keep it) and written to the audit log, in this
    transaction."""
    inc = store.get_incident(s, incident_id)
    if inc is None:
        raise KeyError(f"no incident {incident_id!r} (list them with `pollwatch audit incidents`)")
    updated = apply_override(inc, cause, who, why, at)
    if details and details.get("user_id"):  # from Slack: the root message shows who, as a mention
        updated.override["user_id"] = details["user_id"]
    store.save_incidents(s, [updated])
    changes = {
        "cause": [inc.cause.value, updated.cause.value],
        "cause_confidence": [inc.cause_confidence, updated.cause_confidence],
        "version": [inc.version, updated.version],
    }
    audit.record_override(
        s, watch=inc.watch, incident_id=inc.id, who=who, why=why, at=at, changes=changes, details=details
    )
    return updated


def override_in_session(
    s: object,
    before: Incident,
    cause: Cause,
    who: str,
    why: str,
    at: datetime,
    *,
    watch: Watch | None = None,
    details: dict | None = None,
    reason: str | None = None,
) -> tuple[Incident, list[Alert]]:
    """`override_incident` inside the caller's transaction (Slack actions record their own audit details with it)."""
    after = _set_cause(s, before.id, cause, who, why, at, details)
    w = watch or watch_for(before.watch)
    alerts: list[Alert] = []
    if w is not None:
        verb = "confirmed" if before.cause is cause else f"changed from {before.cause.value} to {cause.value}"
        event = IncidentEvent(
            tick=at, change="updated", incident=after, reasons=[reason or f"attribution {verb} by {who}: {why}"]
        )
        alerts = outbox.enqueue_alerts(s, build_alerts(w, [event]))  # type: ignore[arg-type]
    return after, alerts
