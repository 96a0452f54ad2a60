"""Two ways Slack's interactions come in, handled the same (`Interactions.handle`): Socket Mode with the app-level
token, or a signed HTTP request URL; and `start_listener`, which picks one."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from pydantic import SecretStr

from pollwatch.notify.interact.actions import Interactions, run_followup
from pollwatch.notify.slack import SlackTransport
from pollwatch.redact import register

log = logging.getLogger("pollwatch.notify.interact")

MAX_BODY = 1 << 20  # bytes of one interaction request read at most (Slack's payloads are far smaller)
STALE_AFTER = 5 * 60  # seconds: Slack's replay window for signed requests


# --- Socket Mode ---------------------------------------------------------------------------


class SocketModeListener:
    """Receives interactions over Socket Mode (slack_sdk's built-in client) and acknowledges each envelope."""

    def __init__(self, interactions: Interactions, app_token: SecretStr, *, ping_interval: float = 10.0):
        from slack_sdk.socket_mode import SocketModeClient

        self.interactions = interactions
        register(app_token)
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
        run_followup(followup)

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
        run_followup(followup)

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
