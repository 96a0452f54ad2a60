"""What every transport shares: the `Transport` protocol, `DeliveryError`, the retry of an unavailable Slack,
per-channel pacing and the scrubbed slack_sdk logger.

Three transports implement it: the Slack Web API (`pollwatch.notify.slack`: threads, edits, uploads), an
incoming webhook (`pollwatch.notify.webhook`: plain messages only) and the console (`pollwatch.notify.console`).
Every transport paces its posts (about one message per channel per second), turns failures into
a `DeliveryError` that says whether the message may have been accepted anyway (`ambiguous`), and
never lets a secret into a log line, a stored error or an exception text: Slack's answers pass
through `pollwatch.redact.scrub` (the token and the webhook URL are registered there).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_chain, wait_fixed, wait_none

from pollwatch.notify.render import Message
from pollwatch.redact import scrub

log = logging.getLogger("pollwatch.notify")


# files.getUploadURLExternal's upload URL in a logged body (JSON or a Python repr): a capability, maybe a credential
_UPLOAD_URL = re.compile(r"""(["']upload_url["']\s*:\s*)("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")


class _ScrubFilter(logging.Filter):
    """Scrubs the slack_sdk logger's records (it logs request and response bodies at debug level), upload URLs
    included (`UploadRecord`: never logged)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _UPLOAD_URL.sub(lambda m: f"{m[1]}{m[2][0]}***{m[2][0]}", scrub(record.getMessage()))
        record.args = ()
        return True


def sdk_logger() -> logging.Logger:
    sdk_log = logging.getLogger("pollwatch.notify.slack_sdk")
    if not any(isinstance(f, _ScrubFilter) for f in sdk_log.filters):
        sdk_log.addFilter(_ScrubFilter())
    return sdk_log


class DeliveryError(Exception):
    """A message did not go out. `kind`: auth | channel | rejected | unavailable.

    `ambiguous` means the destination may have accepted it (timeout, dropped connection, 5xx):
    look it up before trying again. `auth` and `channel` stop delivery until an operator acts;
    `unavailable` is retried on the next tick; `rejected` means this payload will never be taken.
    """

    def __init__(self, kind: str, message: str, *, ambiguous: bool = False, channel: str | None = None):
        super().__init__(scrub(message))  # Slack's error words, exceptions' texts: outside text
        self.kind, self.ambiguous, self.channel = kind, ambiguous, channel


def retry_unavailable(
    delays: Iterable[float], what: str, on_retry: Callable[[DeliveryError], None] | None = None
) -> Retrying:
    """Attempts of one Slack call: again after each of `delays` while Slack is `unavailable`, then the last error.

    Any other DeliveryError (auth, channel, rejected) is raised at once. `on_retry` sees each error retried
    (delivery marks the alert suspect when Slack may have taken it). The wait goes through `time.sleep` at call
    time, so a test's patched sleep applies."""
    waits = [float(d) for d in delays]

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, DeliveryError):
            if on_retry is not None:
                on_retry(exc)
            log.warning("%s: %s; retrying in %.1f s", what, exc, state.upcoming_sleep)

    return Retrying(
        stop=stop_after_attempt(len(waits) + 1),
        wait=wait_chain(*(wait_fixed(w) for w in waits)) if waits else wait_none(),
        retry=retry_if_exception(lambda e: isinstance(e, DeliveryError) and e.kind == "unavailable"),
        before_sleep=before_sleep,
        sleep=lambda seconds: time.sleep(seconds),
        reraise=True,
    )


AUTH_ERRORS = {
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "invalid_token",
    "ekm_access_denied",
    "org_login_required",
    "team_access_not_granted",
}
CHANNEL_ERRORS = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "channel_is_archived",
    "no_service",
    "action_prohibited",
    "posting_to_general_channel_denied",
    "restricted_action",
}


def classify_api_error(error: str, status: int | None, channel: str | None) -> DeliveryError:
    if error in AUTH_ERRORS:
        return DeliveryError(
            "auth", f"Slack refused the credentials ({error}): check the bot token / webhook URL", channel=channel
        )
    if error in CHANNEL_ERRORS:
        return DeliveryError(
            "channel", f"Slack cannot post to {channel} ({error}): invite the bot or fix the channel", channel=channel
        )
    if status is not None and (status == 429 or status >= 500):
        # 429 after the retry handler gave up was not accepted; a 5xx may have been
        return DeliveryError(
            "unavailable",
            f"Slack answered HTTP {status} ({error or 'no body'})",
            ambiguous=status >= 500,
            channel=channel,
        )
    if error in ("ratelimited", "fatal_error", "internal_error", "service_unavailable", "request_timeout"):
        return DeliveryError(
            "unavailable", f"Slack is unavailable ({error})", ambiguous=error != "ratelimited", channel=channel
        )
    return DeliveryError("rejected", f"Slack rejected the message ({error})", channel=channel)


class UploadRecord(Protocol):
    """Where a transport keeps the file id of an upload before completing it, so that a retry in another process
    (a worker killed in between) finds it: the store, for a delivery run (pollwatch.notify.threads.StoredUploads).
    `key` is <transport>:<channel id>:<thread ts>:<file name>; a file id is no secret, an upload URL may be one and
    is never given here."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, file_id: str) -> None: ...


class Transport(Protocol):
    name: str
    threads: bool  # can reply in threads, edit messages and upload files

    def post(
        self, channel: str, msg: Message, *, thread_ts: str | None = None, broadcast: bool = False
    ) -> tuple[str, str]:
        """Post a message; return (channel id, ts)."""

    def update(self, channel: str, ts: str, msg: Message) -> None: ...

    def find(self, channel: str, **where: str | None) -> tuple[str, str] | None:
        """Look up a message pollwatch posted by its metadata (`key`, `incident_id`, `role`; within the thread
        `thread_ts` when given); return (channel id, ts) or None."""

    def has_file(self, channel: str, thread_ts: str, filename: str, record: UploadRecord | None = None) -> bool: ...

    def upload(
        self, channel: str, thread_ts: str, filename: str, title: str, data: bytes, record: UploadRecord | None = None
    ) -> None: ...

    def channel_id(self, channel: str) -> str: ...


class Pacer:
    """At most one post per channel per `interval` seconds (Slack's guidance for chat.postMessage)."""

    def __init__(self, interval: float):
        self.interval = interval
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, channel: str) -> None:
        with self._lock:
            now = time.monotonic()
            due = self._last.get(channel, -1e9) + self.interval
            if due > now:
                time.sleep(due - now)
            self._last[channel] = time.monotonic()


class Unthreaded:
    """What a transport without threads, edits or look-ups does when asked for them (the webhook, the console)."""

    threads = False

    def update(self, channel: str, ts: str, msg: Message) -> None:  # cannot edit: the replies carry the news
        return None

    def find(self, channel: str, **where: str | None) -> tuple[str, str] | None:  # cannot look up what it posted
        return None
