"""Handling a responder's action once it is read: answer Slack at once (the acknowledgement, or a modal's field
errors), then act (`pollwatch.responders.act`), tell the responder (an ephemeral message) and deliver the outbox
(the root message edited, the thread told)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pollwatch import responders
from pollwatch.notify.interact.payloads import (
    CAUSE_BLOCK,
    MODAL_ACTIONS,
    WHY_BLOCK,
    BadPayload,
    modal,
    parse_action,
    parse_submission,
)
from pollwatch.notify.render.message import esc
from pollwatch.notify.slack import SlackTransport
from pollwatch.notify.transports import DeliveryError
from pollwatch.playbook import Watch
from pollwatch.redact import scrub
from pollwatch.responders import Action, Request

log = logging.getLogger("pollwatch.notify.interact")

Followup = Callable[[], None]


@dataclass
class Interactions:
    """Handles pollwatch's interaction payloads, whichever way they arrive."""

    transport: SlackTransport
    url: str | None = None  # the store
    watch: Watch | None = None  # for tests; else each incident's watch is looked up by name
    drafter: responders.Drafter | None = None
    deliver: bool = True  # deliver the outbox after an action (the root edit, the thread reply)
    group_ttl: float = 300.0
    # seconds between tries while another run holds the watch's delivery lease
    busy_waits: tuple[float, ...] = (1.0, 2.0, 4.0)
    _groups: dict[str, tuple[float, set[str]]] = field(default_factory=dict, repr=False)
    _delivery_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _to_deliver: set[str] = field(default_factory=set, repr=False)
    _delivering: bool = field(default=False, repr=False)
    results: list[responders.Result] = field(default_factory=list, repr=False)  # what was done, newest last

    def members(self, group: str) -> set[str]:
        """The user ids in a Slack user group (usergroups.users.list), cached for `group_ttl` seconds."""
        now = time.monotonic()
        hit = self._groups.get(group)
        if hit is not None and now - hit[0] < self.group_ttl:
            return hit[1]
        users = set(self.transport.group_members(group))
        self._groups[group] = (now, users)
        return users

    def handle(self, payload: dict[str, Any]) -> tuple[dict[str, Any] | None, Followup | None]:
        """(what to answer Slack now, what to do right after answering)."""
        kind = payload.get("type")
        try:
            if kind == "block_actions":
                req, trigger = parse_action(payload)
                if req.action in MODAL_ACTIONS:
                    return None, lambda: self._open_modal(req, trigger)
                return None, lambda: self._act(req)
            if kind == "view_submission":
                req = parse_submission(payload)
                if not req.why.strip():
                    return {
                        "response_action": "errors",
                        "errors": {WHY_BLOCK: "Say why: it is kept with the decision."},
                    }, None
                if req.action is Action.change_cause and not req.cause:
                    return {"response_action": "errors", "errors": {CAUSE_BLOCK: "Choose a cause."}}, None
                return None, lambda: self._act(req)
        except BadPayload as exc:
            log.info("interaction ignored: %s", exc)
            return None, None
        return None, None

    def _open_modal(self, req: Request, trigger: str | None) -> None:
        # the allow-list is checked before the modal opens: a refused attempt is logged and told at once
        result = (
            responders.act(req, url=self.url, watch=self.watch, members=self.members, drafter=self.drafter)
            if not self._may(req)
            else None
        )
        if result is not None:
            self._tell(req, result)
            return
        try:
            from pollwatch import store
            from pollwatch.override import find_incident

            with store.session_scope(self.url) as s:
                current = find_incident(s, req.incident_id).cause
            self.transport.open_view(trigger or "", modal(req, current))
        except Exception as exc:
            log.warning("modal for %s not opened: %s", req.action.value, scrub(exc))
            self._tell(
                req,
                responders.Result("invalid", f"could not open the form ({scrub(exc)[:200]}); try again"),
            )

    def _may(self, req: Request) -> bool:
        from pollwatch import store
        from pollwatch.override import OverrideError, find_incident, watch_for

        try:
            with store.session_scope(self.url) as s:
                inc = find_incident(s, req.incident_id)
        except OverrideError:
            return False
        w = self.watch if self.watch is not None and self.watch.name == inc.watch else watch_for(inc.watch)
        return w is not None and responders.allowed(w, req.user_id, self.members)[0] and inc.false_alarm is None

    def _act(self, req: Request) -> None:
        result = responders.act(req, url=self.url, watch=self.watch, members=self.members, drafter=self.drafter)
        self.results.append(result)
        log.info("slack action %s on %s by %s: %s", req.action.value, req.incident_id, req.user_id, result.status)
        self._tell(req, result)
        if result.changed and self.deliver and result.watch:
            self._deliver(result)

    def _tell(self, req: Request, result: responders.Result) -> None:
        channel = req.source.get("channel")
        if not channel:
            return
        try:
            self.transport.ephemeral(channel, req.user_id, esc(result.text), thread_ts=req.source.get("thread_ts"))
        except DeliveryError as exc:
            log.warning("could not tell %s: %s", req.user_id, scrub(exc))

    def _deliver(self, result: responders.Result) -> None:
        """Deliver the watch's outbox now; actions arriving meanwhile are delivered by the same loop, after it."""
        with self._delivery_lock:
            self._to_deliver.add(result.watch or "")
            if self._delivering:
                return
            self._delivering = True
        while True:
            with self._delivery_lock:
                if not self._to_deliver:
                    self._delivering = False
                    return
                name = self._to_deliver.pop()
            self._deliver_watch(name)

    def _deliver_watch(self, name: str) -> None:
        from pollwatch.notify.delivery import deliver_outbox
        from pollwatch.override import watch_for

        w = self.watch if self.watch is not None and self.watch.name == name else watch_for(name)
        if w is None:
            return
        for wait in self.busy_waits:
            try:
                report = deliver_outbox(w, self.transport, url=self.url)
            except Exception as exc:  # the tick delivers it next; the action itself is recorded
                log.warning("delivery after a Slack action failed: %s", scrub(exc))
                return
            if not report.busy:
                return
            time.sleep(wait)  # a tick is delivering (it may have read the outbox before this action)
        log.info("alerts of %s are being delivered by another run; the next tick sends this action's", w.name)


def run_followup(followup: Followup | None) -> None:
    """Do what an interaction left for after Slack's acknowledgement; a failure is logged, never raised."""
    if followup is None:
        return
    try:
        followup()
    except Exception:
        log.exception("a Slack action failed after it was acknowledged")
