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

Modules: `payloads` (reading Slack's payloads, the modal), `actions` (`Interactions`), `receivers` (Socket Mode,
the HTTP request URL, `start_listener`).
"""

from pollwatch.notify.interact.actions import Interactions
from pollwatch.notify.interact.payloads import BadPayload, modal, parse_action, parse_submission
from pollwatch.notify.interact.receivers import (
    HTTPReceiver,
    SocketModeListener,
    check_signature,
    signature,
    start_listener,
)

__all__ = [
    "BadPayload",
    "HTTPReceiver",
    "Interactions",
    "SocketModeListener",
    "check_signature",
    "modal",
    "parse_action",
    "parse_submission",
    "signature",
    "start_listener",
]
