"""A real local fake of the Slack Web API for tests: an HTTP server on 127.0.0.1, port 0.

It speaks the documented JSON of the methods pollwatch uses (auth.test, conversations.list,
chat.postMessage, chat.update, conversations.history, conversations.replies,
files.getUploadURLExternal, the upload URL it hands out, files.completeUploadExternal,
files.info), as api.slack.com/methods documents them and slack-sdk (slack_sdk/web/client.py:
files_upload_v2) calls them, and those of responders' actions (apps.connections.open with the
app-level token, answering the fake Socket Mode server's URL, tests/fakes/slack_socket.py;
views.open; chat.postEphemeral; usergroups.users.list), keeps what was posted so tests can assert
on it, and injects faults on demand. Channels may be `private` (listed only by
`types=private_channel`, to members) or not joined (`not_member`: posting answers not_in_channel);
`share_delay` makes a completed upload appear in its thread later, as Slack shares files
asynchronously. Faults:

- ``ratelimit``: HTTP 429 with a ``Retry-After`` header (nothing stored);
- ``server_error``: HTTP 500 (nothing stored);
- ``timeout``: the request is *accepted and stored*, then the answer is delayed past the client's
  timeout (the case that makes naive retries post twice);
- ``invalid_auth`` / ``channel_not_found``: ``{"ok": false, "error": ...}`` with HTTP 200;
- ``unreachable``: the connection is closed without an answer (Slack down);
- ``api_error``: ``{"ok": false, "error": <error>}`` for any other documented error word;
- ``echo``: a careless Slack (or a proxy in front of it) quoting the credential back: the Web API's
  ``{"ok": false, "error": ...}`` with the request's token, an incoming webhook's 400 text with
  its URL, in every encoding of tests/fakes/hostile.py.

Use it with the real ``slack_sdk.WebClient(base_url=fake.base_url)``.

`block_actions(...)` and `view_submission(...)` build the interaction payloads Slack sends when a
user presses one of the buttons of a message the bot posted here, or submits a modal the bot
opened here (shapes as Slack documents them: docs.slack.dev reference/interaction-payloads).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.hostile import echo_text

FAULT_KINDS = {
    "ratelimit",
    "server_error",
    "timeout",
    "invalid_auth",
    "channel_not_found",
    "unreachable",
    "api_error",
    "echo",
    "drip",  # accepted, then the answer a byte at a time (Fault.delay apart), never whole
}


@dataclass
class Fault:
    method: str  # Slack method name, "upload", or "*" for every method
    kind: str
    times: int | None = 1  # None: until cleared
    retry_after: int = 0
    delay: float = 1.0  # for "timeout": how long to hold the answer back
    error: str = "invalid_arguments"  # for "api_error"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    token: str | None
    fault: str | None = None


@dataclass
class FakeSlack:
    token: str = "xoxb-fake-token"
    channels: dict[str, str] = field(
        default_factory=lambda: {
            "pollwatch-kz": "C0KZ0ALERT",
            "pollwatch-alerts": "C0ALERTS01",
            "pollwatch-ops": "C0OPS00001",
        }
    )
    page_size: int = 100  # messages per conversations.history / replies page (small, to exercise cursors)
    webhook_secret: str = "T0000TEST/B0000HOOK/fakewebhooksecret0001"  # the incoming webhook's URL path
    webhook_channel: str = "pollwatch-kz"
    private: set[str] = field(default_factory=set)  # names of private channels (listed only with types=private_channel)
    not_member: set[str] = field(default_factory=set)  # names of channels the bot has not been invited to
    list_page: int = 200  # conversations.list page size cap (Slack's limit is 1000; small pages exercise cursors)
    # seconds before a completed upload shows in its channel (Slack shares files asynchronously)
    share_delay: float = 0.0
    app_token: str = "xapp-1-A0000PWATCH-1-fakeapptoken"
    usergroups: dict[str, list[str]] = field(default_factory=dict)  # S… -> member user ids
    socket_url: Any = None  # callable giving the Socket Mode URL (FakeSocketMode.url)
    trigger_ttl: float = 3.0  # seconds a trigger_id stays valid for views.open

    def __post_init__(self) -> None:
        self.messages: dict[str, list[dict[str, Any]]] = {cid: [] for cid in self.channels.values()}
        self.calls: list[Call] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self.views: dict[str, dict[str, Any]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self._triggers: dict[str, tuple[float, str]] = {}  # trigger_id -> (issued at, user)
        self._lock = threading.RLock()
        self._seq = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()  # ends a dripping answer

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "FakeSlack":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-slack", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeSlack":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    # --- faults ------------------------------------------------------------------------------
    def fail(
        self,
        method: str,
        kind: str,
        times: int | None = 1,
        retry_after: int = 0,
        delay: float = 1.0,
        error: str = "invalid_arguments",
    ) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(FAULT_KINDS)}")
        with self._lock:
            self.faults.append(Fault(method, kind, times, retry_after, delay, error))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.method in (method, "*"):
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            self.faults.remove(f)
                    return f
        return None

    # --- views for assertions ----------------------------------------------------------------
    def channel_id(self, name: str) -> str:
        return self.channels[name.lstrip("#")]

    def roots(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages of a channel (by name or id), oldest first."""
        cid = self.channels.get(channel.lstrip("#"), channel)
        with self._lock:
            return [m for m in self.messages[cid] if m.get("thread_ts") in (None, m["ts"])]

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Replies in the thread of `ts` (without the root), oldest first."""
        cid = self.channels.get(channel.lstrip("#"), channel)
        with self._lock:
            return [m for m in self.messages[cid] if m.get("thread_ts") == ts and m["ts"] != ts]

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    # --- HTTP --------------------------------------------------------------------------------
    def _params(self, req: BaseHTTPRequestHandler, body: bytes) -> dict[str, Any]:
        params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(urlsplit(req.path).query).items()}
        ctype = req.headers.get("Content-Type", "")
        if body and ctype.startswith("application/json"):
            params.update(json.loads(body))
        elif body and ctype.startswith("application/x-www-form-urlencoded"):
            params.update({k: v[-1] for k, v in parse_qs(body.decode()).items()})
        return params

    def _send(
        self, req: BaseHTTPRequestHandler, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        try:
            req.send_response(status)
            req.send_header("Content-Type", "application/json; charset=utf-8")
            req.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                req.send_header(k, v)
            req.end_headers()
            req.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout fault)

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        path = urlsplit(req.path).path
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        if path.startswith("/services/"):
            return self._webhook(req, path, body)
        if path.startswith("/upload/"):
            method, params = "upload", {"file_id": path.rsplit("/", 1)[-1], "bytes": len(body)}
        else:
            method, params = path.removeprefix("/api/"), self._params(req, body)
        auth = req.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else params.get("token")
        fault = self._called(method, params, token)
        if fault is not None and fault.kind == "unreachable":
            return self._hang_up(req)
        if fault is not None and fault.kind == "ratelimit":
            return self._send(req, 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(fault.retry_after)})
        if fault is not None and fault.kind == "server_error":
            return self._send(req, 500, {"ok": False, "error": "internal_error"})
        if fault is not None and fault.kind in ("invalid_auth", "channel_not_found"):
            return self._send(req, 200, {"ok": False, "error": fault.kind})
        if fault is not None and fault.kind == "api_error":
            return self._send(req, 200, {"ok": False, "error": fault.error})
        if fault is not None and fault.kind == "echo":
            return self._send(req, 200, {"ok": False, "error": echo_text([token or ""])})
        if method == "apps.connections.open":
            if token != self.app_token:  # only an app-level token opens Socket Mode connections
                return self._send(req, 200, {"ok": False, "error": "invalid_auth" if token else "not_authed"})
        elif method != "upload" and token != self.token:
            return self._send(req, 200, {"ok": False, "error": "invalid_auth" if token else "not_authed"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return self._send(req, 200, {"ok": False, "error": "unknown_method"})
        if method == "upload":
            self._store_upload(params["file_id"], body)
        status, payload = handler(params)
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.delay)  # accepted and stored; the answer comes too late
        if fault is not None and fault.kind == "drip":
            return self._drip(req, fault.delay)  # accepted and stored; the answer a byte at a time, never whole
        self._send(req, status, payload)

    def _drip(self, req: BaseHTTPRequestHandler, every: float) -> None:
        """A hostile or broken proxy: headers promising a long body, then one byte every `every` seconds (each
        within the client's read timeout) until the client gives up or the server stops."""
        try:
            req.send_response(200)
            req.send_header("Content-Type", "application/json; charset=utf-8")
            req.send_header("Content-Length", "100000")
            req.end_headers()
            req.wfile.write(b'{"ok": true, "pad": "')
            for _ in range(100_000):
                if self._stopped.wait(every):
                    return
                req.wfile.write(b"a")
                req.wfile.flush()
        except OSError:
            pass

    def _called(self, method: str, params: dict[str, Any], token: str | None) -> Fault | None:
        """Record a call; the fault it meets, if any."""
        fault = self._take_fault(method)
        with self._lock:
            self.calls.append(Call(method, params, time.monotonic(), token, fault.kind if fault else None))
        return fault

    @staticmethod
    def _hang_up(req: BaseHTTPRequestHandler) -> None:
        """An unreachable Slack: the connection is dropped without an answer."""
        req.close_connection = True
        try:
            req.connection.shutdown(2)
        except OSError:
            pass

    def _send_text(self, req: BaseHTTPRequestHandler, status: int, text: str) -> None:
        data = text.encode()
        try:
            req.send_response(status)
            req.send_header("Content-Type", "text/plain; charset=utf-8")
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            req.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    @property
    def webhook_url(self) -> str:
        """An incoming-webhook URL for the channel `webhook_channel` (the secret is its path)."""
        return f"http://127.0.0.1:{self.port}/services/{self.webhook_secret}"

    def _webhook(self, req: BaseHTTPRequestHandler, path: str, body: bytes) -> None:
        """Incoming webhooks answer plain text: `ok`, or an error word with a 4xx/5xx status."""
        params = json.loads(body or b"{}")
        fault = self._called("webhook", params, None)
        if fault is not None and fault.kind == "unreachable":
            return self._hang_up(req)
        if fault is not None and fault.kind == "ratelimit":
            req.send_response(429)
            req.send_header("Retry-After", str(fault.retry_after))
            req.send_header("Content-Length", "11")
            req.end_headers()
            req.wfile.write(b"rate_limited")
            return
        if fault is not None and fault.kind == "server_error":
            return self._send_text(req, 500, "internal_error")
        if fault is not None and fault.kind == "channel_not_found":
            return self._send_text(req, 404, "channel_not_found")
        if fault is not None and fault.kind == "echo":
            return self._send_text(req, 400, echo_text([self.webhook_url, self.webhook_secret]))
        if fault is not None and fault.kind == "invalid_auth" or path != "/services/" + self.webhook_secret:
            return self._send_text(req, 403, "invalid_token")
        if not params.get("text") and not params.get("blocks"):
            return self._send_text(req, 400, "no_text")
        with self._lock:
            cid = self.channels[self.webhook_channel]
            self.messages[cid].append(
                {
                    "type": "message",
                    "subtype": "bot_message",
                    "ts": self._next_ts(),
                    "webhook": True,
                    "text": params.get("text", ""),
                    **({"blocks": params["blocks"]} if params.get("blocks") else {}),
                }
            )
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.delay)
        return self._send_text(req, 200, "ok")

    # --- methods -----------------------------------------------------------------------------
    def _next_ts(self) -> str:
        n = next(self._seq)
        return f"{1_700_000_000 + n}.{n:06d}"

    def _resolve(self, channel: str | None) -> str | None:
        if not channel:
            return None
        if channel in self.messages:
            return channel
        return self.channels.get(channel.lstrip("#"))

    @staticmethod
    def _err(error: str) -> tuple[int, dict[str, Any]]:
        return 200, {"ok": False, "error": error}

    def _m_auth_test(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, {
            "ok": True,
            "url": "https://pollwatch-test.slack.com/",
            "team": "pollwatch test",
            "user": "pollwatch",
            "team_id": "T0000TEST",
            "user_id": "U0000BOT1",
            "bot_id": "B0000BOT1",
            "is_enterprise_install": False,
        }

    def _m_conversations_list(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """conversations.list: `types` (default public_channel), `limit`, `cursor`. Private channels are listed to
        members only, and, as reported of Slack (slack-ruby-client#397, bolt-python#424), not when asked together
        with public ones: only `types=private_channel` lists them."""
        types = set(str(p.get("types") or "public_channel").split(","))
        want_private = types == {"private_channel"}
        chans = [
            {
                "id": cid,
                "name": name,
                "is_channel": name not in self.private,
                "is_group": name in self.private,
                "is_private": name in self.private,
                "is_archived": False,
                "is_member": name not in self.not_member,
            }
            for name, cid in sorted(self.channels.items())
            if (name in self.private and want_private and name not in self.not_member)
            or (name not in self.private and "public_channel" in types)
        ]
        start = int(p.get("cursor") or 0)
        size = max(1, min(int(p.get("limit") or 100), self.list_page))
        page = chans[start : start + size]
        more = start + size < len(chans)
        return 200, {
            "ok": True,
            "channels": page,
            "response_metadata": {"next_cursor": str(start + size) if more else ""},
        }

    def _member(self, cid: str) -> bool:
        name = next((n for n, c in self.channels.items() if c == cid), None)
        return name not in self.not_member

    def _message_fields(self, p: dict[str, Any]) -> dict[str, Any]:
        blocks = p.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        metadata = p.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        out: dict[str, Any] = {"text": p.get("text") or ""}
        if blocks is not None:
            out["blocks"] = blocks
        if metadata is not None:
            out["metadata"] = metadata
        return out

    def _m_chat_postMessage(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        cid = self._resolve(p.get("channel"))
        if cid is None:
            return self._err("channel_not_found")
        if not self._member(cid):  # a private channel the bot is not in does not exist for it
            return self._err(
                "channel_not_found" if any(self.channels.get(n) == cid for n in self.private) else "not_in_channel"
            )
        if not p.get("text") and not p.get("blocks"):
            return self._err("no_text")
        with self._lock:
            ts = self._next_ts()
            msg = {
                "type": "message",
                "subtype": "bot_message",
                "bot_id": "B0000BOT1",
                "user": "U0000BOT1",
                "ts": ts,
                **self._message_fields(p),
            }
            thread_ts = p.get("thread_ts")
            if thread_ts:
                if not any(m["ts"] == thread_ts for m in self.messages[cid]):
                    return self._err("thread_not_found")
                msg["thread_ts"] = thread_ts
                if self._flag(p.get("reply_broadcast")):
                    msg["subtype"] = "thread_broadcast"
            self.messages[cid].append(msg)
        public = {k: v for k, v in msg.items() if k != "metadata"}
        return 200, {"ok": True, "channel": cid, "ts": ts, "message": public}

    def _m_chat_update(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        cid = self._resolve(p.get("channel"))
        if cid is None:
            return self._err("channel_not_found")
        with self._lock:
            msg = next((m for m in self.messages[cid] if m["ts"] == p.get("ts")), None)
            if msg is None:
                return self._err("message_not_found")
            msg.update(self._message_fields(p))
            msg["edited"] = {"user": "U0000BOT1", "ts": self._next_ts()}
            msg["edits"] = msg.get("edits", 0) + 1
        return 200, {
            "ok": True,
            "channel": cid,
            "ts": msg["ts"],
            "text": msg["text"],
            "message": {k: v for k, v in msg.items() if k not in ("metadata", "edits")},
        }

    def _page(self, items: list[dict[str, Any]], p: dict[str, Any], key: str, include_meta: bool) -> dict[str, Any]:
        limit = min(int(p.get("limit") or self.page_size), self.page_size)
        start = int(p.get("cursor") or 0)
        page = items[start : start + limit]
        if not include_meta:
            page = [{k: v for k, v in m.items() if k != "metadata"} for m in page]
        page = [{k: v for k, v in m.items() if k != "edits"} for m in page]
        more = start + limit < len(items)
        return {
            "ok": True,
            key: page,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    @staticmethod
    def _flag(v: Any) -> bool:
        return str(v).lower() in ("1", "true")

    def _m_conversations_history(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        cid = self._resolve(p.get("channel"))
        if cid is None or cid != p.get("channel"):
            return self._err("channel_not_found")  # the real API wants an id, not a name
        with self._lock:
            top = [m for m in self.messages[cid] if m.get("thread_ts") in (None, m["ts"])]
            top = list(reversed(top))  # newest first
            return 200, self._page(top, p, "messages", self._flag(p.get("include_all_metadata")))

    def _m_conversations_replies(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        cid = self._resolve(p.get("channel"))
        if cid is None or cid != p.get("channel"):
            return self._err("channel_not_found")
        with self._lock:
            root = next((m for m in self.messages[cid] if m["ts"] == p.get("ts")), None)
            if root is None:
                return self._err("thread_not_found")
            items = [root] + [
                m for m in self.messages[cid] if m.get("thread_ts") == root["ts"] and m["ts"] != root["ts"]
            ]
            return 200, self._page(items, p, "messages", self._flag(p.get("include_all_metadata")))

    def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not p.get("filename") or not p.get("length"):
            return self._err("invalid_arguments")
        with self._lock:
            file_id = f"F{next(self._seq):09d}"
            self.files[file_id] = {
                "id": file_id,
                "name": p["filename"],
                "length": int(p["length"]),
                "data": None,
                "completed": False,
            }
        return 200, {"ok": True, "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}", "file_id": file_id}

    def _store_upload(self, file_id: str, body: bytes) -> None:
        with self._lock:
            if file_id in self.files:
                self.files[file_id]["data"] = body

    def _m_upload(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if p["file_id"] not in self.files:
            return 404, {"ok": False, "error": "file_not_found"}
        return 200, {"ok": True}

    def _m_files_completeUploadExternal(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        files = p.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        if not files:
            return self._err("invalid_arguments")
        cid = self._resolve(p.get("channel_id")) if p.get("channel_id") else None
        if p.get("channel_id") and cid is None:
            return self._err("channel_not_found")
        out = []
        with self._lock:
            for f in files:
                rec = self.files.get(f.get("id"))
                if rec is None or rec["data"] is None:
                    return self._err("file_not_found")
                if rec["completed"]:
                    return self._err("invalid_arguments")  # completing a file twice: the client must not
                rec["completed"] = True
                rec["title"] = f.get("title") or rec["name"]
                out.append(
                    {
                        "id": rec["id"],
                        "name": rec["name"],
                        "title": rec["title"],
                        "mimetype": "image/png",
                        "size": len(rec["data"]),
                    }
                )
            if cid is not None:
                msg = {
                    "type": "message",
                    "subtype": "bot_message",
                    "bot_id": "B0000BOT1",
                    "user": "U0000BOT1",
                    "text": p.get("initial_comment") or "",
                    "files": out,
                    "upload": True,
                }
                if p.get("thread_ts"):
                    msg["thread_ts"] = p["thread_ts"]
                if self.share_delay > 0:  # completed now, shared in the channel a little later
                    timer = threading.Timer(self.share_delay, self._share, (cid, msg))
                    timer.daemon = True
                    timer.start()
                else:
                    self._share(cid, msg)
        return 200, {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in out]}

    def _share(self, cid: str, msg: dict[str, Any]) -> None:
        with self._lock:
            self.messages[cid].append({**msg, "ts": self._next_ts()})

    def _m_files_info(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """files.info: a completed file (an upload never completed is not a file yet)."""
        with self._lock:
            rec = self.files.get(p.get("file") or "")
            if rec is None or not rec["completed"]:
                return self._err("file_not_found")
            return 200, {
                "ok": True,
                "file": {
                    "id": rec["id"],
                    "name": rec["name"],
                    "title": rec.get("title"),
                    "size": len(rec["data"] or b""),
                },
            }

    # --- responders' actions ------------------------------------------------------------------
    def _m_apps_connections_open(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.socket_url is None:
            return self._err("internal_error")
        return 200, {"ok": True, "url": self.socket_url()}

    def _m_chat_postEphemeral(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        cid = self._resolve(p.get("channel"))
        if cid is None:
            return self._err("channel_not_found")
        if not p.get("user"):
            return self._err("user_not_in_channel")
        if not p.get("text") and not p.get("blocks"):
            return self._err("no_text")
        with self._lock:
            ts = self._next_ts()
            self.ephemerals.append(
                {
                    "channel": cid,
                    "user": p["user"],
                    "text": p.get("text") or "",
                    "ts": ts,
                    "thread_ts": p.get("thread_ts"),
                }
            )
        return 200, {"ok": True, "message_ts": ts}

    def _m_views_open(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        view = p.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not isinstance(view, dict) or view.get("type") != "modal" or not view.get("title") or not view.get("blocks"):
            return self._err("invalid_arguments")
        with self._lock:
            issued = self._triggers.pop(str(p.get("trigger_id")), None)
            if issued is None:
                return self._err("invalid_trigger_id")
            if time.monotonic() - issued[0] > self.trigger_ttl:
                return self._err("expired_trigger_id")
            vid = f"V{next(self._seq):09d}"
            stored = {
                **view,
                "id": vid,
                "team_id": "T0000TEST",
                "state": {"values": {}},
                "hash": f"{time.time():.6f}.fake",
                "root_view_id": vid,
                "app_id": "A0000PWATCH",
                "bot_id": "B0000BOT1",
                "private_metadata": view.get("private_metadata", ""),
                "callback_id": view.get("callback_id", ""),
            }
            self.views[vid] = {"view": stored, "user": issued[1]}
        return 200, {"ok": True, "view": stored}

    def _m_usergroups_users_list(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        group = p.get("usergroup")
        if group not in self.usergroups:
            return self._err("no_such_subteam")
        return 200, {"ok": True, "users": list(self.usergroups[group])}

    def _trigger(self, user: str) -> str:
        trigger = f"{next(self._seq)}.{uuid.uuid4().hex[:10]}.{uuid.uuid4().hex}"
        with self._lock:
            self._triggers[trigger] = (time.monotonic(), user)
        return trigger

    @staticmethod
    def _user(user: str, name: str) -> dict[str, Any]:
        return {"id": user, "username": name, "name": name, "team_id": "T0000TEST"}

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        cid = self.channels.get(channel.lstrip("#"), channel)
        with self._lock:
            return next(m for m in self.messages[cid] if m["ts"] == ts)

    def block_actions(
        self, channel: str, ts: str, action_id: str, user: str = "U0RESP0001", name: str = "responder"
    ) -> dict[str, Any]:
        """The payload Slack sends when `user` presses the button `action_id` on the bot's message `ts`."""
        cid = self.channels.get(channel.lstrip("#"), channel)
        msg = self.message(cid, ts)
        for block in msg.get("blocks") or []:
            for el in block.get("elements") or [] if block.get("type") == "actions" else []:
                if el.get("action_id") == action_id:
                    action = {
                        "action_id": action_id,
                        "block_id": block.get("block_id"),
                        "text": el.get("text"),
                        "value": el.get("value"),
                        "type": el.get("type", "button"),
                        "action_ts": f"{time.time():.6f}",
                    }
                    if el.get("style"):
                        action["style"] = el["style"]
                    container = {"type": "message", "message_ts": ts, "channel_id": cid, "is_ephemeral": False}
                    if msg.get("thread_ts") and msg["thread_ts"] != ts:
                        container["thread_ts"] = msg["thread_ts"]
                    public = {k: v for k, v in msg.items() if k not in ("metadata", "edits")}
                    name_of = next((n for n, i in self.channels.items() if i == cid), cid)
                    return {
                        "type": "block_actions",
                        "user": self._user(user, name),
                        "api_app_id": "A0000PWATCH",
                        "token": "fake-verification-token",
                        "container": container,
                        "trigger_id": self._trigger(user),
                        "team": {"id": "T0000TEST", "domain": "pollwatch-test"},
                        "enterprise": None,
                        "is_enterprise_install": False,
                        "channel": {"id": cid, "name": name_of},
                        "message": public,
                        "state": {"values": {}},
                        "response_url": f"http://127.0.0.1:{self.port}/actions/T0000TEST/1/fake",
                        "actions": [action],
                    }
        raise KeyError(f"no button {action_id!r} on message {ts} in {channel}")

    def view_submission(
        self, view_id: str, values: dict[str, str], user: str | None = None, name: str = "responder"
    ) -> dict[str, Any]:
        """The payload Slack sends when the modal `view_id` is submitted with `values`
        (block_id -> typed text or chosen value).
        """
        with self._lock:
            rec = self.views[view_id]
        view = json.loads(json.dumps(rec["view"]))
        state: dict[str, Any] = {}
        for block in view.get("blocks", []):
            if block.get("type") != "input" or block.get("block_id") not in values:
                continue
            el, value = block["element"], values[block["block_id"]]
            if el["type"] == "static_select":
                option = next(
                    (o for o in el.get("options", []) if o["value"] == value),
                    {"text": {"type": "plain_text", "text": value}, "value": value},
                )
                state[block["block_id"]] = {el["action_id"]: {"type": "static_select", "selected_option": option}}
            else:
                state[block["block_id"]] = {el["action_id"]: {"type": el["type"], "value": value}}
        view["state"] = {"values": state}
        uid = user or rec["user"]
        return {
            "type": "view_submission",
            "team": {"id": "T0000TEST", "domain": "pollwatch-test"},
            "user": self._user(uid, name),
            "api_app_id": "A0000PWATCH",
            "token": "fake-verification-token",
            "trigger_id": self._trigger(uid),
            "view": view,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }


def serve(**kw: Any) -> FakeSlack:
    """Start a fake on a free port (stop it with `.stop()`)."""
    return FakeSlack(**kw).start()
