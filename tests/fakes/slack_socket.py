"""A real local fake of Slack's Socket Mode: a WebSocket server on 127.0.0.1, port 0.

It follows slack-sdk's own Socket Mode tests (slackapi/python-slack-sdk
tests/slack_sdk/socket_mode/mock_socket_mode_server.py, test_interactions_builtin.py) and Slack's
Socket Mode documentation: the app gets the WebSocket URL from `apps.connections.open` (the fake
Web API, tests/fakes/slack_api.py, hands out this server's `ws://` URL for the app-level token);
on connecting, the server sends `{"type": "hello", "num_connections", "debug_info",
"connection_info"}`; then it pushes envelopes `{"envelope_id", "type": "interactive" |
"events_api" | ..., "payload", "accepts_response_payload", "retry_attempt", "retry_reason"}`, and
the app acknowledges each with `{"envelope_id", "payload"?}`. An envelope that is not acknowledged
is re-sent by Slack with `retry_attempt` + 1 (`redeliver`). `disconnect` sends Slack's
`{"type": "disconnect", "reason": "refresh_requested"}`.

The real `slack_sdk.socket_mode.SocketModeClient` (built-in WebSocket implementation) talks to it.
The payloads themselves come from the fake Web API's `block_actions` and `view_submission`, which
build them from the messages and modals the bot really posted there.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from websockets.sync.server import ServerConnection, serve


class FakeSocketMode:
    """Socket Mode's server side: hello, envelopes, acknowledgements."""

    def __init__(self, app_id: str = "A0000PWATCH") -> None:
        self.app_id = app_id
        self.acks: dict[str, dict[str, Any]] = {}  # envelope_id -> the acknowledgement the app sent
        self.sent: dict[str, dict[str, Any]] = {}  # envelope_id -> the envelope
        self.received: list[dict[str, Any]] = []  # every message from the app
        self.connections = 0
        self._conns: list[ServerConnection] = []
        self._lock = threading.Condition()
        self._server = serve(self._handler, "127.0.0.1", 0, compression=None)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-socket-mode", daemon=True)

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "FakeSocketMode":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def __enter__(self) -> "FakeSocketMode":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """What apps.connections.open answers (Slack's is `wss://wss-primary.slack.com/link/?ticket=...`)."""
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}/link/?ticket={uuid.uuid4()}&app_id={self.app_id}"

    def _handler(self, ws: ServerConnection) -> None:
        with self._lock:
            self.connections += 1
            self._conns.append(ws)
            self._lock.notify_all()
        ws.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": len(self._conns),
                    "debug_info": {"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
                    "connection_info": {"app_id": self.app_id},
                }
            )
        )
        try:
            for raw in ws:
                msg = json.loads(raw)
                with self._lock:
                    self.received.append(msg)
                    if isinstance(msg, dict) and msg.get("envelope_id") in self.sent:
                        self.acks[msg["envelope_id"]] = msg
                    self._lock.notify_all()
        except Exception:
            pass
        finally:
            with self._lock:
                if ws in self._conns:
                    self._conns.remove(ws)
                self._lock.notify_all()

    # --- what tests do -------------------------------------------------------------------------
    def wait_connected(self, timeout: float = 10.0) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: self._conns, timeout):
                raise TimeoutError("the app did not connect to the fake Socket Mode server")

    def send(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        envelope_id: str | None = None,
        retry_attempt: int = 0,
        accepts_response_payload: bool = True,
    ) -> str:
        """Push one envelope to the connected app; return its envelope_id."""
        envelope_id = envelope_id or str(uuid.uuid4())
        env = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
        }
        if kind == "events_api":
            env.update(retry_attempt=retry_attempt, retry_reason="timeout" if retry_attempt else "")
        self.wait_connected()
        with self._lock:
            self.sent[envelope_id] = env
            self.acks.pop(envelope_id, None)  # a redelivery waits for its own acknowledgement
            conn = self._conns[-1]
        conn.send(json.dumps(env))
        return envelope_id

    def interact(self, payload: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """Send an `interactive` envelope and wait for the app's acknowledgement; return it."""
        eid = self.send("interactive", payload)
        return self.wait_ack(eid, timeout)

    def redeliver(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Slack sending the same envelope again (it saw no acknowledgement in time)."""
        env = self.sent[envelope_id]
        self.send(env["type"], env["payload"], envelope_id=envelope_id)
        return self.wait_ack(envelope_id, timeout)

    def wait_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        with self._lock:
            if not self._lock.wait_for(lambda: envelope_id in self.acks, timeout):
                raise TimeoutError(f"envelope {envelope_id} was not acknowledged within {timeout} s")
            return self.acks[envelope_id]

    def disconnect(self) -> None:
        """Slack asking the app to reconnect (it then calls apps.connections.open again)."""
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.send(
                json.dumps(
                    {"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "applink-fake"}}
                )
            )


def wait_for(pred: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll `pred()` until it is truthy (the app acts after acknowledging); return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
