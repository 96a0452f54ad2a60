"""Notifications: incident alerts for responders and notices for operators, in Slack or on the console.

- `render`: Block Kit messages (root, thread update, end, operator notice) with a text fallback.
- `routing`: the playbook's `alerts:` rules (thresholds, mention, per-provider opt-in, update limit).
- `transports`: what every transport shares (`Transport`, `DeliveryError`, retries, pacing); `slack` (the Web API),
  `webhook` (an incoming webhook) and `console` implement it.
- `delivery`: the outbox walk that sends each alert once, in order (`deliver_outbox`); `threads`: one incident's
  thread in it (root, updates, end, charts); `notices`: operator notices as outbox alerts.

Credentials come from the caller (Prefect Secret blocks are loaded in `tasks/`, never here);
`choose_transport` picks Slack when a bot token is given, else a webhook, else the console.
"""

from __future__ import annotations

from typing import IO

from pydantic import SecretStr

from pollwatch.notify.delivery import DeliveryReport, OutboxDelivery, deliver_outbox
from pollwatch.notify.notices import gap_alerts, gap_notices, notice_alerts
from pollwatch.notify.render import Links, Message
from pollwatch.notify.console import ConsoleTransport
from pollwatch.notify.slack import SlackTransport
from pollwatch.notify.transports import DeliveryError, Transport
from pollwatch.notify.webhook import WebhookTransport

__all__ = [
    "ConsoleTransport",
    "DeliveryError",
    "DeliveryReport",
    "Links",
    "Message",
    "OutboxDelivery",
    "SlackTransport",
    "Transport",
    "WebhookTransport",
    "choose_transport",
    "deliver_outbox",
    "gap_alerts",
    "gap_notices",
    "notice_alerts",
]


def choose_transport(
    bot_token: SecretStr | None = None,
    webhook_url: SecretStr | None = None,
    *,
    base_url: str | None = None,
    stream: IO[str] | None = None,
    pace: float = 1.0,
    timeout: float = 10.0,
) -> Transport:
    """Slack Web API with a bot token; else an incoming webhook; else the console."""
    if bot_token is not None and bot_token.get_secret_value():
        return SlackTransport(bot_token, base_url=base_url, pace=pace, timeout=timeout)
    if webhook_url is not None and webhook_url.get_secret_value():
        return WebhookTransport(webhook_url, pace=pace, timeout=timeout)
    return ConsoleTransport(stream)
