"""What responders read: incident and notice messages in Slack Block Kit, with a text fallback.

One incident has one root message that always shows its current state (edited on every change)
and a thread of updates. Messages are built with slack_sdk's Block Kit models, so whatever this
package returns is accepted by them; `Message.plain()` gives the same content as plain text for
the console and for webhooks without Block Kit.

- `message`: `Message`, escaping outside text for mrkdwn, block helpers, metadata, mentions;
- `incident`: the root message, a thread update, the end (and their link buttons);
- `responses`: the responders' buttons, who did what, the draft statement;
- `notice`: an operator notice.

The words themselves (kind titles, causes, times, scope, depth) are `pollwatch.words`, shared with the
console, the charts and the public statement.
"""

from pollwatch.notify.render.incident import Links, end_message, ioda_link, ooni_link, root_message, update_message
from pollwatch.notify.render.message import METADATA_EVENT, Message, markdown_to_mrkdwn, mention_markup, metadata
from pollwatch.notify.render.notice import notice_message
from pollwatch.notify.render.responses import ACTION_PREFIX, action_buttons, draft_message, responders_text

__all__ = [
    "ACTION_PREFIX",
    "METADATA_EVENT",
    "Links",
    "Message",
    "action_buttons",
    "draft_message",
    "end_message",
    "ioda_link",
    "markdown_to_mrkdwn",
    "mention_markup",
    "metadata",
    "notice_message",
    "ooni_link",
    "responders_text",
    "root_message",
    "update_message",
]
