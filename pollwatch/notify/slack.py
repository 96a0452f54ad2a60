"""The Slack Web API through slack_sdk's `WebClient`: posts, edits, metadata look-ups, chart uploads, and the calls
behind the responders' buttons (ephemeral answers, modals, user groups)."""

from __future__ import annotations

import re
import socket
import threading
from http.client import HTTPException, InvalidURL
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.error import URLError
from urllib.parse import urlsplit

from pydantic import SecretStr

from pollwatch.notify.render import METADATA_EVENT, Message
from pollwatch.notify.transports import (
    DeliveryError,
    Pacer,
    UploadRecord,
    classify_api_error,
    log,
    retry_unavailable,
    sdk_logger,
)
from pollwatch.redact import register, scrub


T = TypeVar("T")


class _Overdue(Exception):
    """A call that did not finish within its deadline (`within`)."""


def within(deadline: float, fn: Callable[[], T], name: str) -> T:
    """`fn()` in a daemon thread, waited for at most `deadline` seconds in all: urllib's timeout bounds each wait
    only, and a server answering a byte at a time would hold the delivery for ever (the abandoned thread ends at its
    socket's next timeout after the server stops). What `fn` raises is raised here; `_Overdue` when it is late."""
    done: list[tuple[bool, Any]] = []

    def attempt() -> None:
        try:
            done.append((True, fn()))
        except BaseException as exc:  # handed to the caller's thread
            done.append((False, exc))

    worker = threading.Thread(target=attempt, name=name, daemon=True)
    worker.start()
    worker.join(deadline)
    if not done:
        raise _Overdue(name)
    ok, value = done[0]
    if not ok:
        raise value
    return value


class SlackTransport:
    """The Slack Web API through slack_sdk's `WebClient` (threads, edits, metadata look-ups, uploads)."""

    name = "slack"
    threads = True
    files = True

    def __init__(
        self,
        token: SecretStr,
        *,
        base_url: str | None = None,
        timeout: float = 10.0,
        pace: float = 1.0,
        max_rate_limit_retries: int = 3,
        history_pages: int = 10,
        upload_retry_delays: tuple[float, ...] = (2.0, 5.0),
        upload_deadline: float = 60.0,
        call_deadline: float | None = None,
    ):
        from slack_sdk import WebClient
        from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

        register(token)
        sdk_log = sdk_logger()
        # Only 429s are retried inside the SDK (they were not accepted). Connection errors and 5xx
        # come back to us: a blind resend after an accepted-but-unanswered post would duplicate it.
        self.client = WebClient(
            token=token.get_secret_value(),
            base_url=base_url or "https://slack.com/api/",
            timeout=timeout,
            logger=sdk_log,
            retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=max_rate_limit_retries)],
        )
        self.pacer = Pacer(pace)
        self.history_pages = history_pages
        self._channels: dict[str, str] = {}
        # (channel id, thread ts, file name) -> file id of our upload (also kept in the `record` given to upload)
        self._uploads: dict[tuple[str, str, str], str] = {}
        # a chart upload that failed or timed out is retried (idempotently)
        self.upload_retry_delays = upload_retry_delays
        self.upload_deadline = upload_deadline  # seconds for a chart's bytes to reach the upload URL, in all
        # seconds for one Web API call's whole answer, not only each wait (default: room for the SDK's rate-limit
        # retries, each waiting up to Slack's Retry-After, 30 s taken as its usual most)
        self.call_deadline = call_deadline or (timeout + 30.0) * (max_rate_limit_retries + 1)

    def __repr__(self) -> str:
        return f"SlackTransport(base_url={self.client.base_url!r})"

    # --- calls -------------------------------------------------------------------------------
    def _call(self, method: str, where: str | None, **kw: Any) -> Any:
        from slack_sdk.errors import SlackApiError, SlackRequestError

        fn = getattr(self.client, method)
        try:
            return within(self.call_deadline, lambda: fn(**kw), f"pollwatch-slack-{method}")
        except _Overdue:
            # the request may have been accepted: the exactly-once look-up decides before anything is resent
            raise DeliveryError(
                "unavailable",
                f"Slack did not answer {method} within {self.call_deadline:g} s",
                ambiguous=True,
                channel=where,
            ) from None
        except SlackApiError as exc:
            resp = exc.response
            error = (resp.get("error") if isinstance(resp.data, dict) else None) or ""
            raise classify_api_error(error, resp.status_code, where) from None
        except (TimeoutError, socket.timeout) as exc:
            raise DeliveryError(
                "unavailable", f"Slack did not answer {method} in time ({exc})", ambiguous=True, channel=where
            ) from None
        except (URLError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            ambiguous = not isinstance(reason, ConnectionRefusedError)
            raise DeliveryError(
                "unavailable",
                f"Slack unreachable during {method} ({type(reason).__name__}: {reason})",
                ambiguous=ambiguous,
                channel=where,
            ) from None
        except SlackRequestError as exc:
            raise DeliveryError("rejected", f"bad request to Slack ({exc})", channel=where) from None

    def check(self) -> dict[str, Any]:
        """auth.test: who the token is (raises DeliveryError kind=auth on a bad token)."""
        r = self._call("auth_test", None)
        return {k: r.get(k) for k in ("team", "team_id", "user", "user_id", "bot_id")}

    def channel_id(self, channel: str) -> str:
        """A channel id from an id (preferred in playbooks: C..., G...), `#name` or `name`.

        Names are looked up with conversations.list, one paginated listing per type (public channels, then
        private ones: a combined `types=public_channel,private_channel` is reported to leave private channels
        out, slack-ruby-client#397, bolt-python#424). A name that is not there, or a channel the bot is not a
        member of, is a `channel` error naming it."""
        if re.fullmatch(r"[CGD][A-Z0-9]{6,}", channel):
            return channel
        name = channel.lstrip("#")
        if name in self._channels:
            return self._channels[name]
        found = None
        for kind in ("public_channel", "private_channel"):
            cursor = None
            for _ in range(self.history_pages * 5):
                r = self._call(
                    "conversations_list", channel, types=kind, exclude_archived=True, limit=200, cursor=cursor
                )
                found = next((c for c in r.get("channels", []) if c.get("name") == name), None)
                cursor = (r.get("response_metadata") or {}).get("next_cursor")
                if found is not None or not cursor:
                    break
            if found is not None:
                break
        if found is None:
            raise DeliveryError(
                "channel",
                f"no channel #{name} visible to the bot (public and private channels looked up): "
                f"check the name, invite the bot, or give the channel's ID (C...) in the playbook",
                channel=channel,
            )
        if found.get("is_member") is False:
            raise DeliveryError(
                "channel",
                f"the bot is not a member of #{name} ({found['id']}): invite it (/invite @pollwatch)",
                channel=channel,
            )
        self._channels[name] = found["id"]
        return found["id"]

    def post(
        self, channel: str, msg: Message, *, thread_ts: str | None = None, broadcast: bool = False
    ) -> tuple[str, str]:
        cid = self.channel_id(channel)
        self.pacer.wait(cid)
        kw: dict[str, Any] = {
            "channel": cid,
            "text": msg.text,
            "blocks": msg.blocks or None,
            "metadata": msg.metadata,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts:
            kw["thread_ts"] = thread_ts
            kw["reply_broadcast"] = broadcast
        try:
            r = self._call("chat_postMessage", channel, **kw)
        except DeliveryError as exc:
            if exc.kind != "rejected" or not msg.blocks:
                raise
            # Slack refused the blocks (size, a limit we missed): the text alone still informs
            log.warning("Slack rejected the blocks of a message (%s); posting its text only", exc)
            r = self._call("chat_postMessage", channel, **{**kw, "blocks": None})
        return r["channel"], r["ts"]

    def update(self, channel: str, ts: str, msg: Message) -> None:
        cid = self.channel_id(channel)
        self.pacer.wait(cid)
        self._call(
            "chat_update", channel, channel=cid, ts=ts, text=msg.text, blocks=msg.blocks or None, metadata=msg.metadata
        )

    def _messages(self, method: str, where: str, **kw: Any) -> Iterable[dict[str, Any]]:
        cursor = None
        for _ in range(self.history_pages):
            r = self._call(method, where, limit=200, cursor=cursor, include_all_metadata=True, **kw)
            yield from r.get("messages", [])
            cursor = (r.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return

    def find(
        self,
        channel: str,
        *,
        key: str | None = None,
        incident_id: str | None = None,
        role: str | None = None,
        thread_ts: str | None = None,
    ) -> tuple[str, str] | None:
        cid = self.channel_id(channel)
        if thread_ts:
            msgs = self._messages("conversations_replies", channel, channel=cid, ts=thread_ts)
        else:
            msgs = self._messages("conversations_history", channel, channel=cid)
        for m in msgs:
            meta = m.get("metadata") or {}
            if meta.get("event_type") != METADATA_EVENT:
                continue
            p = meta.get("event_payload") or {}
            if key is not None and p.get("idempotency_key") != key:
                continue
            if incident_id is not None and p.get("incident_id") != incident_id:
                continue
            if role is not None and p.get("role") != role:
                continue
            return cid, m["ts"]
        return None

    def has_file(self, channel: str, thread_ts: str, filename: str, record: UploadRecord | None = None) -> bool:
        cid = self.channel_id(channel)
        fid = self._upload_id((cid, thread_ts, filename), record)
        if fid is not None and self._file_complete(fid, channel):
            return True  # shared, or being shared (Slack shares uploaded files asynchronously)
        for m in self._messages("conversations_replies", channel, channel=cid, ts=thread_ts):
            if any(f.get("name") == filename for f in m.get("files") or []):
                return True
        return False

    def _upload_key(self, key: tuple[str, str, str]) -> str:
        return ":".join((self.name, *key))

    def _upload_id(self, key: tuple[str, str, str], record: UploadRecord | None) -> str | None:
        """The file id of an earlier upload of this chart: from this transport, else from `record` (another process)."""
        fid = self._uploads.get(key)
        if fid is None and record is not None:
            fid = record.get(self._upload_key(key))
            if fid is not None:
                self._uploads[key] = fid
        return fid

    def _file_complete(self, file_id: str, where: str) -> bool:
        """Whether an earlier upload of a chart was completed (files.info knows the file)."""
        try:
            self._call("files_info", where, file=file_id)
        except DeliveryError as exc:
            if exc.kind == "rejected" and "file_not_found" in str(exc):  # the earlier attempt never completed
                return False
            if exc.kind == "rejected" or "missing_scope" in str(exc):
                # e.g. no files:read scope: unknown, and a second copy is worse than none
                log.warning(
                    "cannot tell whether chart upload %s completed (%s); not uploading it again", file_id, scrub(exc)
                )
                return True
            raise
        return True

    def upload(
        self, channel: str, thread_ts: str, filename: str, title: str, data: bytes, record: UploadRecord | None = None
    ) -> None:
        """files.getUploadURLExternal, the bytes to the URL it gives, files.completeUploadExternal into the thread.

        Slack shares a completed file asynchronously, so a retry cannot look for it in the thread yet: the file id
        of each upload is kept before it is completed, in this transport and in `record` (the store, for a
        delivery run, so that a new process after a worker was killed finds it too), and a retry asks files.info
        about that file: completed, nothing more; not found, it completes that same file (or, when Slack no longer
        takes it, uploads afresh) instead of uploading a second copy. The upload URL is neither kept nor logged."""
        cid = self.channel_id(channel)
        key = (cid, thread_ts, filename)
        for attempt in retry_unavailable(self.upload_retry_delays, f"chart {filename}"):
            with attempt:
                fid = self._upload_id(key, record)
                if fid is not None and self._file_complete(fid, channel):
                    return
                self.pacer.wait(cid)
                if fid is not None:
                    try:
                        return self._complete(fid, title, cid, thread_ts, channel)
                    except DeliveryError as exc:
                        if exc.kind != "rejected":
                            raise
                        # not completed (files.info said so) and no longer completable: a fresh upload is no copy
                        log.warning("chart upload %s cannot be completed (%s); uploading it afresh", fid, exc)
                r = self._call("files_getUploadURLExternal", channel, filename=filename, length=len(data))
                url, fid = _upload_target(r, channel)
                self._send_bytes(url, data, channel)
                self._uploads[key] = fid
                if record is not None:
                    record.put(self._upload_key(key), fid)  # before completing: a kill after it leaves the id
                self._complete(fid, title, cid, thread_ts, channel)

    def _complete(self, fid: str, title: str, cid: str, thread_ts: str, where: str) -> None:
        self._call(
            "files_completeUploadExternal",
            where,
            files=[{"id": fid, "title": title}],
            channel_id=cid,
            thread_ts=thread_ts,
        )

    def _send_bytes(self, url: str, data: bytes, where: str) -> None:
        """POST the chart's bytes to the upload URL, all of it within `upload_deadline` seconds: urllib's timeout
        bounds each wait only, and a server answering a byte at a time would hold the delivery for ever (the
        abandoned attempt's thread ends at its socket's next timeout after the server stops)."""
        try:
            within(self.upload_deadline, lambda: self._post_bytes(url, data, where), "pollwatch-chart-upload")
        except _Overdue:
            raise DeliveryError(
                "unavailable",
                f"the file's bytes did not reach Slack within {self.upload_deadline:g} s",
                ambiguous=True,
                channel=where,
            ) from None

    def _post_bytes(self, url: str, data: bytes, where: str) -> None:
        from urllib.request import Request, urlopen

        try:
            with urlopen(
                Request(url, data=data, method="POST", headers={"Content-Type": "application/octet-stream"}),
                timeout=self.client.timeout,
            ) as resp:
                if resp.status != 200:
                    raise DeliveryError(
                        "rejected", f"Slack refused the file's bytes (HTTP {resp.status})", channel=where
                    )
        except (TimeoutError, socket.timeout, URLError, ConnectionError, OSError) as exc:
            raise DeliveryError(
                "unavailable", f"the file's bytes did not reach Slack ({scrub(exc)})", channel=where
            ) from None
        except (ValueError, InvalidURL) as exc:  # their text quotes the URL (it may carry a credential): not said
            raise DeliveryError(
                "rejected", f"Slack's upload URL cannot be opened ({type(exc).__name__})", channel=where
            ) from None
        except HTTPException as exc:  # a malformed answer (bad status line, cut short)
            raise DeliveryError(
                "unavailable", f"the file's bytes did not reach Slack ({type(exc).__name__})", channel=where
            ) from None

    # --- responders' actions (pollwatch.notify.interact) ------------------------------------------
    def ephemeral(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
        """A message only `user` sees (chat.postEphemeral): the answer to a button they pressed."""
        kw: dict[str, Any] = {"channel": self.channel_id(channel), "user": user, "text": text[:3000]}
        if thread_ts:
            kw["thread_ts"] = thread_ts
        self._call("chat_postEphemeral", channel, **kw)

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        """Open a modal for the user who pressed a button (views.open; the trigger_id is valid for 3 seconds)."""
        self._call("views_open", None, trigger_id=trigger_id, view=view)

    def group_members(self, group: str) -> list[str]:
        """The user ids of a user group (usergroups.users.list; scope usergroups:read)."""
        return list(self._call("usergroups_users_list", None, usergroup=group).get("users") or [])


FILE_ID = re.compile(r"F[A-Z0-9]{2,62}")  # Slack's file ids (F0123ABCD); the store keeps up to 64 characters


def _upload_target(answer: Any, where: str) -> tuple[str, str]:
    """files.getUploadURLExternal's (upload URL, file id), or a `rejected` DeliveryError for an answer that is not
    Slack's: a file id of another shape (an echoed token, control characters, too long for the store) is neither
    stored nor logged, and the bytes go to an http(s) URL only (urllib would open file:// too)."""
    url, fid = answer.get("upload_url"), answer.get("file_id")
    if not isinstance(fid, str) or not FILE_ID.fullmatch(fid):
        raise DeliveryError("rejected", "Slack's files.getUploadURLExternal gave no usable file id", channel=where)
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise DeliveryError("rejected", "Slack's files.getUploadURLExternal gave no http(s) upload URL", channel=where)
    return url, fid
