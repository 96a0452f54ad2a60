"""Responders' buttons in Slack: receiving their actions (Socket Mode, or a signed HTTP request URL).

Every incident's root message and thread updates carry five buttons (`render.action_buttons`,
action ids `pollwatch:<action>`, value `{"incident", "version"}`). Slack sends a press as a
`block_actions` interaction; Change cause and False alarm open a modal (`views.open`) whose
`view_submission` carries the cause and the required reason. `Interactions.handle` turns each
payload into a `pollwatch.responders.Request`, answers Slack at once (the acknowledgement, or a
modal's field errors) and then does the rest: `responders.act`, an ephemeral answer to the
responder (chat.postEphemeral), and delivery of the outbox (the root message edited, the thread
told).

Two ways in, the same handling:
- `SocketModeListener` (default): slack_sdk's Socket Mode client opens a WebSocket to Slack with
  the app-level token (`xapp-…`, from apps.connections.open); each `interactive` envelope is
  acknowledged by its `envelope_id`. Nothing public is needed.
- `HTTPReceiver`: Slack POSTs `payload=<json>` to a request URL; each request must carry
  `X-Slack-Signature: v0=HMAC-SHA256(signing secret, "v0:{timestamp}:{body}")` and a
  `X-Slack-Request-Timestamp` within five minutes. Stale and forged requests are refused with
  401 and counted (`counts`), and change nothing.

A repeat (a button pressed twice, Slack re-delivering an envelope it saw no acknowledgement for,
an HTTP retry) is the same responder action and acts once (`responders.Request.key`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from pydantic import SecretStr

from pollwatch import responders
from pollwatch.models import Cause
from pollwatch.notify.render import ACTION_PREFIX
from pollwatch.notify.render.message import esc
from pollwatch.notify.slack import SlackTransport
from pollwatch.notify.transports import DeliveryError
from pollwatch.redact import register, scrub
from pollwatch.playbook import Watch
from pollwatch.responders import Action, Request
from pollwatch.words import CAUSE_WORDS

log = logging.getLogger("pollwatch.notify.interact")

MAX_BODY = 1 << 20  # bytes of one interaction request read at most (Slack's payloads are far smaller)
STALE_AFTER = 5 * 60  # seconds: Slack's replay window for signed requests
MODAL_ACTIONS = {Action.change_cause, Action.false_alarm}
WHY_BLOCK, WHY_INPUT = "why", "why_input"
CAUSE_BLOCK, CAUSE_INPUT = "cause", "cause_select"
Followup = Callable[[], None]


class BadPayload(ValueError):
    """An interaction pollwatch does not handle or cannot read (answered with an acknowledgement, nothing done)."""


def _dig(doc: Any, *keys: str) -> Any:
    """doc[k1][k2]... where each level is a dict, else {} (payload fields may be anything)."""
    for k in keys:
        doc = doc.get(k) if isinstance(doc, dict) else None
    return doc if doc is not None else {}


def _str(v: Any, n: int = 200) -> str:
    return str(v)[:n] if isinstance(v, (str, int)) else ""


def _button_value(raw: Any) -> tuple[str, int | None]:
    try:
        doc = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        doc = {}
    incident = doc.get("incident") if isinstance(doc, dict) else None
    if not isinstance(incident, str) or not 0 < len(incident) <= 64:
        raise BadPayload("the button names no incident")
    version = doc.get("version")
    return incident, version if isinstance(version, int) and not isinstance(version, bool) else None


def _user(payload: dict[str, Any]) -> tuple[str, str]:
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    uid = _str(user.get("id"), 32)
    if not uid:
        raise BadPayload("the interaction names no user")
    return uid, _str(user.get("username") or user.get("name"), 80)


def parse_action(payload: dict[str, Any]) -> tuple[Request, str | None]:
    """A `block_actions` payload as a responder request, and its trigger_id (to open a modal with)."""
    actions = payload.get("actions") if isinstance(payload.get("actions"), list) else []
    act = next(
        (a for a in actions if isinstance(a, dict) and str(a.get("action_id", "")).startswith(ACTION_PREFIX)), None
    )
    if act is None:
        raise BadPayload("not one of pollwatch's buttons")
    try:
        action = Action(str(act["action_id"]).removeprefix(ACTION_PREFIX))
    except ValueError:
        raise BadPayload(f"unknown pollwatch action {act.get('action_id')!r}") from None
    incident, version = _button_value(act.get("value"))
    uid, name = _user(payload)
    container = payload.get("container") if isinstance(payload.get("container"), dict) else {}
    channel = payload.get("channel") if isinstance(payload.get("channel"), dict) else {}
    message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
    source = {
        "via": "slack",
        "channel": _str(container.get("channel_id") or channel.get("id"), 32),
        "message_ts": _str(container.get("message_ts") or message.get("ts"), 32),
        "thread_ts": _str(message.get("thread_ts"), 32) or None,
        "action_ts": _str(act.get("action_ts"), 32),
    }
    return Request(
        action=action, incident_id=incident, user_id=uid, user_name=name, version=version, source=source
    ), _str(payload.get("trigger_id"), 200) or None


def parse_submission(payload: dict[str, Any]) -> Request:
    """A `view_submission` of pollwatch's modal as a responder request (its why may be empty: the caller checks)."""
    view = payload.get("view") if isinstance(payload.get("view"), dict) else {}
    callback = str(view.get("callback_id", ""))
    if not callback.startswith(ACTION_PREFIX):
        raise BadPayload("not pollwatch's modal")
    try:
        action = Action(callback.removeprefix(ACTION_PREFIX))
    except ValueError:
        raise BadPayload(f"unknown pollwatch modal {callback!r}") from None
    try:
        raw = view.get("private_metadata")
        meta = json.loads(raw if isinstance(raw, str) and raw else "{}")
    except ValueError:
        raise BadPayload("the modal's metadata is unreadable") from None
    incident, version = _button_value(json.dumps(meta) if isinstance(meta, dict) else "")
    why = _dig(view, "state", "values", WHY_BLOCK, WHY_INPUT, "value")
    cause = _dig(view, "state", "values", CAUSE_BLOCK, CAUSE_INPUT, "selected_option", "value")
    uid, name = _user(payload)
    source = {
        "via": "slack",
        "channel": _str(meta.get("channel"), 32),
        "message_ts": _str(meta.get("message_ts"), 32),
        "thread_ts": _str(meta.get("thread_ts"), 32) or None,
        "view_id": _str(view.get("id"), 32),
    }
    return Request(
        action=action,
        incident_id=incident,
        user_id=uid,
        user_name=name,
        why=_str(why, 3000) if isinstance(why, str) else "",
        version=version,
        cause=_str(cause, 40) if isinstance(cause, str) and cause else None,
        source=source,
    )


def modal(req: Request, current: Cause | None = None) -> dict[str, Any]:
    """The modal for Change cause (a cause and a why) or False alarm (a why)."""
    meta = json.dumps(
        {
            "incident": req.incident_id,
            "version": req.version,
            "channel": req.source.get("channel"),
            "message_ts": req.source.get("message_ts"),
            "thread_ts": req.source.get("thread_ts"),
        }
    )
    why = {
        "type": "input",
        "block_id": WHY_BLOCK,
        "label": {"type": "plain_text", "text": "Why"},
        "element": {
            "type": "plain_text_input",
            "action_id": WHY_INPUT,
            "multiline": True,
            "max_length": responders.MAX_WHY,
            "placeholder": {"type": "plain_text", "text": "The source or reasoning; kept with the decision"},
        },
    }
    if req.action is Action.change_cause:
        options = [{"text": {"type": "plain_text", "text": CAUSE_WORDS[c][:75]}, "value": c.value} for c in Cause]
        select: dict[str, Any] = {
            "type": "static_select",
            "action_id": CAUSE_INPUT,
            "options": options,
            "placeholder": {"type": "plain_text", "text": "Choose the cause"},
        }
        if current is not None:
            select["initial_option"] = next(o for o in options if o["value"] == current.value)
        blocks = [
            {
                "type": "input",
                "block_id": CAUSE_BLOCK,
                "label": {"type": "plain_text", "text": "Cause"},
                "element": select,
            },
            why,
        ]
        title = "Change cause"
    else:
        blocks = [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "Close this incident as *not an outage*. "
                    "Later alerts about it stop; the decision is logged.",
                },
            },
            why,
        ]
        title = "False alarm"
    return {
        "type": "modal",
        "callback_id": ACTION_PREFIX + req.action.value,
        "private_metadata": meta,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


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
            log.warning("modal for %s not opened: %s", req.action.value, self.transport.scrub(exc))
            self._tell(
                req,
                responders.Result("invalid", f"could not open the form ({self.transport.scrub(exc)[:200]}); try again"),
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
            log.warning("could not tell %s: %s", req.user_id, self.transport.scrub(exc))

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
                log.warning("delivery after a Slack action failed: %s", self.transport.scrub(exc))
                return
            if not report.busy:
                return
            time.sleep(wait)  # a tick is delivering (it may have read the outbox before this action)
        log.info("alerts of %s are being delivered by another run; the next tick sends this action's", w.name)


def _run(followup: Followup | None) -> None:
    if followup is None:
        return
    try:
        followup()
    except Exception:
        log.exception("a Slack action failed after it was acknowledged")


# --- Socket Mode ---------------------------------------------------------------------------


class SocketModeListener:
    """Receives interactions over Socket Mode (slack_sdk's built-in client) and acknowledges each envelope."""

    def __init__(self, interactions: Interactions, app_token: SecretStr, *, ping_interval: float = 10.0):
        from slack_sdk.socket_mode import SocketModeClient

        self.interactions = interactions
        register(app_token)
        self.scrub = scrub
        self.client = SocketModeClient(
            app_token=app_token.get_secret_value(),
            web_client=interactions.transport.client,
            logger=logging.getLogger("pollwatch.notify.slack_sdk"),
            ping_interval=ping_interval,
        )
        self.client.socket_mode_request_listeners.append(self._on_request)
        self.acked = 0

    def _on_request(self, client: Any, req: Any) -> None:
        from slack_sdk.socket_mode.response import SocketModeResponse

        body, followup = (None, None)
        if req.type == "interactive" and isinstance(req.payload, dict):
            body, followup = self.interactions.handle(req.payload)
        # acknowledged first, within Slack's 3 seconds; a modal's errors travel in the acknowledgement
        client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id, payload=body))
        self.acked += 1
        _run(followup)

    def start(self) -> "SocketModeListener":
        self.client.connect()
        log.info("listening for Slack actions over Socket Mode")
        return self

    def stop(self) -> None:
        self.client.close()

    def __enter__(self) -> "SocketModeListener":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# --- HTTP request URL ----------------------------------------------------------------------------


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature: `v0=` + HMAC-SHA256(secret, "v0:{timestamp}:{body}")."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def check_signature(secret: SecretStr, headers: Any, body: bytes, now: float | None = None) -> str | None:
    """None when the request is Slack's and fresh; else why not: `stale` or `forged`."""
    ts, sig = headers.get("X-Slack-Request-Timestamp") or "", headers.get("X-Slack-Signature") or ""
    if not ts.isdigit() or not sig:
        return "forged"
    if abs((now if now is not None else time.time()) - int(ts)) > STALE_AFTER:
        return "stale"
    if not hmac.compare_digest(signature(secret.get_secret_value(), ts, body), sig):
        return "forged"
    return None


class HTTPReceiver:
    """Slack's interactivity request URL (`POST /slack/actions`), for workspaces that do not allow Socket Mode."""

    path = "/slack/actions"

    def __init__(
        self, interactions: Interactions, signing_secret: SecretStr, *, host: str = "127.0.0.1", port: int = 0
    ):
        self.interactions, self.secret = interactions, signing_secret
        self.counts: dict[str, int] = {"accepted": 0, "stale": 0, "forged": 0, "bad": 0}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                receiver._post(self)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{self.path}"

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1

    def _answer(self, req: BaseHTTPRequestHandler, status: int, body: dict[str, Any] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        req.send_response(status)
        req.send_header("Content-Type", "application/json" if body is not None else "text/plain")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    def _post(self, req: BaseHTTPRequestHandler) -> None:
        length = (
            int(req.headers.get("Content-Length") or 0) if (req.headers.get("Content-Length") or "0").isdigit() else -1
        )
        if req.path.split("?")[0] != self.path or not 0 <= length <= MAX_BODY:
            self._count("bad")
            req.close_connection = True
            return self._answer(req, 404 if length >= 0 else 413)
        body = req.rfile.read(length)
        refused = check_signature(self.secret, req.headers, body)
        if refused is not None:
            self._count(refused)
            log.warning("Slack request refused: %s signature (from %s)", refused, req.client_address[0])
            return self._answer(req, 401)
        try:
            payload = json.loads(parse_qs(body.decode("utf-8"), max_num_fields=20).get("payload", ["{}"])[-1])
        except (ValueError, UnicodeDecodeError):
            self._count("bad")
            return self._answer(req, 400)
        self._count("accepted")
        ack, followup = self.interactions.handle(payload if isinstance(payload, dict) else {})
        self._answer(req, 200, ack)
        _run(followup)

    def start(self) -> "HTTPReceiver":
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, name="pollwatch-slack-http", daemon=True
        )
        self._thread.start()
        log.info("listening for Slack actions at %s", self.url)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "HTTPReceiver":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_listener(
    bot_token: SecretStr | None,
    *,
    app_token: SecretStr | None = None,
    signing_secret: SecretStr | None = None,
    http: str | None = None,
    base_url: str | None = None,
    url: str | None = None,
) -> SocketModeListener | HTTPReceiver:
    """Start receiving responders' actions: Socket Mode with the app-level token, or with `http`
    ("HOST:PORT") an HTTP request URL checked with the signing secret. Raises ValueError naming
    what is missing."""
    if bot_token is None or not bot_token.get_secret_value():
        raise ValueError(
            "Slack actions need the bot token (Secret block slack-bot-token or POLLWATCH_SLACK_BOT_TOKEN) "
            "to answer, open forms and edit the alerts"
        )
    interactions = Interactions(SlackTransport(bot_token, base_url=base_url, pace=1.0), url=url)
    if http:
        if signing_secret is None or not signing_secret.get_secret_value():
            raise ValueError(
                "an HTTP request URL needs the app's signing secret (Secret block slack-signing-secret or "
                "POLLWATCH_SLACK_SIGNING_SECRET) to refuse forged requests"
            )
        host, _, port = http.rpartition(":")
        if not port.isdigit():
            raise ValueError(f"--http {http!r}: expected HOST:PORT, e.g. 127.0.0.1:3000")
        return HTTPReceiver(interactions, signing_secret, host=host or "127.0.0.1", port=int(port)).start()
    if app_token is None or not app_token.get_secret_value().startswith("xapp-"):
        raise ValueError(
            "Socket Mode needs the app-level token xapp-… with connections:write (Secret block slack-app-token or "
            "POLLWATCH_SLACK_APP_TOKEN); or use an HTTP request URL (--http HOST:PORT)"
        )
    return SocketModeListener(interactions, app_token).start()
