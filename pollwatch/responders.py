"""Responders act on an incident where they read it: the actions behind the Slack buttons.

Five actions (`Action`): acknowledge (who is on it), confirm the cause, change the cause (with
why), close as a false alarm (with why: not an outage), and ask for the draft public statement.
`pollwatch.notify.interact` turns Slack's payloads into a `Request`; `act` carries it out in one
transaction:

1. the audit chain's lock is taken first, so a repeat of the same action (a button pressed twice,
   Slack re-delivering an envelope or a request) finds the first one's key on the incident
   (`Incident.responses`) and changes nothing;
2. confirming, changing the cause and closing need the responder in the watch's
   `alerts.responders` (a user id, or a user group holding them); a refused attempt is audited
   and changes nothing else;
3. a cause is set through `pollwatch.override` (the incident's override, the audit log's override
   entry with the Slack details); an acknowledgement, a false alarm and a draft request are kept on
   the incident and logged as `response` entries;
4. what changed goes into the outbox: an update alert (the root message is edited to show who
   acknowledged or confirmed, the thread says it), the closing message of a false alarm, or the
   draft statement as a reply in the thread.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from pollwatch import audit, outbox, store
from pollwatch.alerts import build_alerts, incident_alert
from pollwatch.models import Alert, Cause, Incident, IncidentEvent, iso
from pollwatch.override import OverrideError, find_incident, override_in_session, watch_for
from pollwatch.playbook import Watch

MAX_WHY = 500  # characters kept of a responder's reason (Slack's input is limited to it too)
DRAFT_EVENT = "draft"  # the outbox event of a draft statement posted into the thread


class Action(StrEnum):
    acknowledge = "acknowledge"
    confirm = "confirm"
    change_cause = "change_cause"
    false_alarm = "false_alarm"
    draft = "draft"


GUARDED = {Action.confirm, Action.change_cause, Action.false_alarm}  # only the watch's responders


@dataclass
class Request:
    """One responder action as it arrived (from a button, a modal, or a test)."""

    action: Action
    incident_id: str
    user_id: str  # Slack user id (U…/W…)
    user_name: str = ""
    why: str = ""
    cause: str | None = None
    version: int | None = None  # the incident's version on the message the button was on
    source: dict[str, Any] = field(default_factory=dict)  # via, channel, message_ts, action_ts, view_id
    at: datetime | None = None

    @property
    def who(self) -> str:
        return (self.user_name or self.user_id).strip()

    def key(self) -> str:
        """What makes a repeat the same action: pressing twice on one message, or Slack re-delivering it."""
        v = "-" if self.version is None else str(self.version)
        return {
            Action.acknowledge: f"acknowledge:{self.user_id}",  # one acknowledgement per responder
            Action.false_alarm: "false_alarm",  # closed once, by whoever is first
            Action.draft: f"draft:{v}",
            Action.change_cause: f"change_cause:{self.user_id}:{v}:{self.cause}",
            Action.confirm: f"confirm:{self.user_id}:{v}",
        }[self.action]


@dataclass
class Result:
    """What `act` did. `status`: done | duplicate | refused | invalid | closed. `text` is for the responder only."""

    status: str
    text: str
    incident: Incident | None = None
    alerts: list[Alert] = field(default_factory=list)
    watch: str | None = None

    @property
    def changed(self) -> bool:
        return self.status == "done"


GroupMembers = Callable[[str], Iterable[str]]  # user group id -> its members' user ids (raises when it cannot tell)


def allowed(watch: Watch, user_id: str, members: GroupMembers | None = None) -> tuple[bool, str]:
    """Whether `user_id` may confirm or change a cause or close an incident of `watch` (and why not)."""
    listed = watch.alerts.responders
    if not listed:
        return False, f"watch {watch.name} lists no responders (alerts.responders in its playbook)"
    if user_id in listed:
        return True, ""
    for group in (g for g in listed if g.startswith("S")):
        if members is None:
            continue
        try:
            if user_id in set(members(group)):
                return True, ""
        except Exception as exc:  # Slack could not tell: refuse rather than guess
            return False, f"could not check the members of user group {group} ({type(exc).__name__})"
    return False, f"you are not among the responders of watch {watch.name}"


def _clean(text: str) -> str:
    """A responder's reason: control characters out, whitespace folded, bounded."""
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", text or "")
    return re.sub(r"\s+", " ", text).strip()[:MAX_WHY]


def _record(inc: Incident, req: Request, at: datetime, **extra: Any) -> Incident:
    """The incident with this action added to its responses and its version bumped (a new alert key)."""
    entry = {
        "action": req.action.value,
        "key": req.key(),
        "by": req.who,
        "user_id": req.user_id,
        "at": iso(at),
        "source": dict(req.source),
        **extra,
    }
    return inc.model_copy(
        update={"responses": [*inc.responses, entry], "version": inc.version + 1, "updated_at": max(inc.updated_at, at)}
    )


def _alerts(
    s: Any, watch: Watch, inc: Incident, at: datetime, change: str, reasons: list[str], key: str
) -> list[Alert]:
    alerts = build_alerts(watch, [IncidentEvent(tick=at, change=change, reasons=reasons, incident=inc)])
    for a in alerts:
        a.payload["response"] = key  # delivery: the closing message of a false alarm is this one
    return outbox.enqueue_alerts(s, alerts)


def draft_alert(watch: Watch, inc: Incident, text: str, at: datetime, who: str) -> Alert:
    """The draft statement as an outbox alert: a reply in the incident's thread (never rate-limited)."""
    payload = {"incident": inc.model_dump(mode="json"), "requested_by": who, "reasons": [f"draft statement for {who}"]}
    return incident_alert(watch, inc, DRAFT_EVENT, at, text[:39000], payload)


Drafter = Callable[[Watch, str], str]  # (watch, incident id) -> the draft statement, Markdown (`pollwatch brief`)


def default_drafter() -> Drafter | None:
    """`pollwatch brief`'s draft for one incident (pollwatch.brief.incident_statement), when this version has it."""
    try:
        from pollwatch import brief  # type: ignore[attr-defined]
    except ImportError:
        return None
    return getattr(brief, "incident_statement", None)


def _make_draft(
    req: Request, url: str | None, watch: Watch | None, drafter: Drafter | None
) -> tuple[str | None, Result | None]:
    """(the draft statement for the request's incident, None), or (None, why not as a Result)."""
    with store.session_scope(url) as s:
        try:
            inc = find_incident(s, req.incident_id)
        except OverrideError as exc:
            return None, Result("invalid", str(exc))
    w = watch if watch is not None and watch.name == inc.watch else watch_for(inc.watch)
    make = drafter or default_drafter()
    if w is None or make is None:
        why = (
            f"watch {inc.watch} is not found here"
            if w is None
            else "the draft statement needs `pollwatch brief`, which this version lacks"
        )
        return None, Result("invalid", why, inc)
    try:
        return (make(w, inc.id) if drafter is not None else make(w, inc.id, url=url)), None  # type: ignore[call-arg]
    except Exception as exc:
        return None, Result(
            "invalid", f"the draft could not be made ({type(exc).__name__}: {str(exc)[:200]})", inc, watch=w.name
        )


def _same_decision(inc: Incident, req: Request) -> dict[str, Any] | None:
    """The responder's own standing decision that this request repeats (Confirm pressed again on the edited root
    message, the same cause and why submitted again from a new form), or None."""
    ov = inc.override or {}
    if req.action not in (Action.confirm, Action.change_cause) or ov.get("user_id") != req.user_id:
        return None
    cause = req.cause if req.action is Action.change_cause else inc.cause.value
    if ov.get("cause") != cause or (req.action is Action.change_cause and ov.get("why") != req.why):
        return None
    return ov


@dataclass
class _Doing:
    """One action under way inside act()'s transaction: the request, its incident and watch, and when."""

    s: Any
    req: Request
    inc: Incident
    w: Watch
    at: datetime

    def details(self, **extra: Any) -> dict[str, Any]:
        return {"user_id": self.req.user_id, "key": self.req.key(), "source": dict(self.req.source), **extra}

    def log(self, action: str, **extra: Any) -> None:
        """A `response` entry in the audit log (a refused attempt too)."""
        audit.record_response(
            self.s,
            watch=self.inc.watch,
            incident_id=self.inc.id,
            action=action,
            who=self.req.who,
            at=self.at,
            details=self.details(**extra),
        )

    def result(self, status: str, text: str, inc: Incident | None = None, alerts: list[Alert] | None = None) -> Result:
        return Result(status, text, inc or self.inc, alerts or [], self.w.name)


def _stop(d: _Doing, members: GroupMembers | None) -> Result | None:
    """Why this request changes nothing (a repeat, a responder not listed, a closed incident, no why), or None."""
    req, inc = d.req, d.inc
    done = next((r for r in inc.responses if r.get("key") == req.key()), None) or _same_decision(inc, req)
    if done is not None:
        return d.result("duplicate", f"already done by {done.get('by')} at {done.get('at')}; nothing changed")
    if req.action in GUARDED:
        ok, why_not = allowed(d.w, req.user_id, members)
        if not ok:
            d.log("refused", action_requested=req.action.value, reason=why_not)
            return d.result("refused", f"Not allowed: {why_not}. Nothing changed; the attempt is logged.")
    closed = inc.false_alarm
    if closed is not None and req.action is not Action.draft:
        return d.result(
            "closed", f"incident {inc.id} was closed as a false alarm by {closed.get('by')}; nothing changed"
        )
    if req.action in (Action.change_cause, Action.false_alarm) and not req.why:
        return d.result("invalid", "say why (the source or reasoning): it is kept with the decision")
    return None


def _acknowledge(d: _Doing) -> Result:
    after = _record(d.inc, d.req, d.at)
    store.save_incidents(d.s, [after])
    d.log(d.req.action.value)
    alerts = _alerts(d.s, d.w, after, d.at, "updated", [f"acknowledged by {d.req.who}"], d.req.key())
    return d.result("done", f"You acknowledged incident {d.inc.id}.", after, alerts)


def _set_cause(d: _Doing) -> Result:
    req, inc = d.req, d.inc
    try:
        cause = Cause(req.cause or inc.cause.value)
    except ValueError:
        return d.result("invalid", f"unknown cause {req.cause!r}: expected one of {', '.join(c.value for c in Cause)}")
    why = req.why or "confirmed from Slack"
    verb = "confirmed" if cause is inc.cause else f"changed from {inc.cause.value} to {cause.value}"
    marked = _record(inc, req, d.at, cause=cause.value, why=why)
    store.save_incidents(d.s, [marked.model_copy(update={"version": inc.version})])  # the override bumps it
    after, alerts = override_in_session(
        d.s,
        marked.model_copy(update={"version": inc.version}),
        cause,
        req.who,
        why,
        d.at,
        watch=d.w,
        details=d.details(action=req.action.value),
        reason=f"cause {verb} by {req.who}: {why}",
    )
    for a in alerts:
        a.payload["response"] = req.key()
    return d.result("done", f"Cause of incident {inc.id} {verb}.", after, alerts)


def _false_alarm(d: _Doing) -> Result:
    req = d.req
    after = _record(d.inc, req, d.at, why=req.why)
    store.save_incidents(d.s, [after])
    d.log(req.action.value, why=req.why)
    alerts = _alerts(d.s, d.w, after, d.at, "resolved", [f"closed as a false alarm by {req.who}: {req.why}"], req.key())
    return d.result("done", f"Incident {d.inc.id} closed as a false alarm.", after, alerts)


def _post_draft(d: _Doing, text: str) -> Result:
    after = _record(d.inc, d.req, d.at, sha256=hashlib.sha256(text.encode()).hexdigest())
    # a draft changes no state to alert on
    store.save_incidents(d.s, [after.model_copy(update={"version": d.inc.version})])
    d.log(d.req.action.value, sha256=after.responses[-1]["sha256"])
    alerts = outbox.enqueue_alerts(d.s, [draft_alert(d.w, d.inc, text, d.at, d.req.who)])
    return d.result("done", f"The draft statement for incident {d.inc.id} is posted in the thread.", after, alerts)


def act(
    req: Request,
    *,
    url: str | None = None,
    watch: Watch | None = None,
    members: GroupMembers | None = None,
    drafter: Drafter | None = None,
) -> Result:
    """Carry out one responder action (see the module docstring); never raises for a responder's mistake."""
    at = (req.at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    req.why = _clean(req.why)
    draft: str | None = None
    if req.action is Action.draft:  # made before the transaction: the brief reads the store itself
        draft, problem = _make_draft(req, url, watch, drafter)
        if problem is not None:
            return problem
    with store.session_scope(url) as s:
        audit.lock_chain(s)  # a repeat waits here and then finds this action's key
        try:
            inc = find_incident(s, req.incident_id)
        except OverrideError as exc:
            return Result("invalid", str(exc))
        w = watch if watch is not None and watch.name == inc.watch else watch_for(inc.watch)
        if w is None:
            return Result("invalid", f"watch {inc.watch} of incident {inc.id} is not found here; nothing changed", inc)
        d = _Doing(s, req, inc, w, at)
        stopped = _stop(d, members)
        if stopped is not None:
            return stopped
        if req.action is Action.acknowledge:
            return _acknowledge(d)
        if req.action in (Action.confirm, Action.change_cause):
            return _set_cause(d)
        if req.action is Action.false_alarm:
            return _false_alarm(d)
        return _post_draft(d, draft or "")
