"""An incoming webhook: one fixed channel, plain messages only."""

from __future__ import annotations

import socket
import time
from urllib.error import URLError

from pydantic import SecretStr

from pollwatch.notify.render import Message
from pollwatch.notify.transports import (
    DeliveryError,
    Pacer,
    Unthreaded,
    UploadRecord,
    classify_api_error,
    sdk_logger,
)
from pollwatch.redact import register


class WebhookTransport(Unthreaded):
    """An incoming webhook: one fixed channel, plain messages only (no threads, edits, look-ups or files).

    Without look-ups a post whose answer was lost cannot be checked, so an ambiguous failure is
    retried: at least once, not exactly once (docs/alerts.md).
    """

    name = "webhook"
    files = False

    def __init__(self, url: SecretStr, *, timeout: float = 10.0, pace: float = 1.0, max_rate_limit_retries: int = 3):
        from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
        from slack_sdk.webhook import WebhookClient

        register(url)
        sdk_log = sdk_logger()
        self.client = WebhookClient(
            url.get_secret_value(),
            timeout=int(max(1, timeout)),
            logger=sdk_log,
            retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=max_rate_limit_retries)],
        )
        self.pacer = Pacer(pace)
        self._n = 0

    def __repr__(self) -> str:
        return "WebhookTransport(url=***)"

    def channel_id(self, channel: str) -> str:
        return "webhook"

    def post(
        self, channel: str, msg: Message, *, thread_ts: str | None = None, broadcast: bool = False
    ) -> tuple[str, str]:
        self.pacer.wait("webhook")
        try:
            r = self.client.send(text=msg.text, blocks=msg.blocks or None, unfurl_links=False, unfurl_media=False)
        except (TimeoutError, socket.timeout) as exc:
            raise DeliveryError("unavailable", f"the webhook did not answer in time ({exc})", ambiguous=True) from None
        except (URLError, ConnectionError, OSError) as exc:
            raise DeliveryError(
                "unavailable", f"the webhook is unreachable ({getattr(exc, 'reason', exc)})", ambiguous=True
            ) from None
        if r.status_code != 200:
            raise classify_api_error(str(r.body or "").strip(), r.status_code, channel)
        self._n += 1
        return "webhook", f"{time.time():.6f}"

    def has_file(self, channel: str, thread_ts: str, filename: str, record: UploadRecord | None = None) -> bool:
        return True

    def upload(
        self, channel: str, thread_ts: str, filename: str, title: str, data: bytes, record: UploadRecord | None = None
    ) -> None:
        return None
