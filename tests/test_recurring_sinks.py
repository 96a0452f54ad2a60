"""A recurring incident's schedule text in every sink (pollwatch/words.py `pattern_text`, brief/sentences.py
`recurrence_text`, the reasons of recurring.py and classify/fold.py): what of it is not pollwatch's own words (the
time zone, the episodes' local times and notes, as the store gives them back) is escaped for Slack mrkdwn, the
console, the HTML report and the statement draft's Markdown and HTML."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pollwatch import brief, report, store
from pollwatch.alerts import render_text
from pollwatch.notify.render.incident import root_message, update_message
from pollwatch.sinks import terminal_safe
from tests.test_recurring import NIGHT, _nights
from tests.test_security_sinks import SLACK_HOSTILE, _assert_inert, _mrkdwn_texts

HOSTILE = [
    SLACK_HOSTILE,
    "<script>alert(1)</script><img src=x onerror=alert(1)>",
    "x\n# forged heading\n\n- [click](https://evil.example)\n===",
    "\x1b]8;;https://evil.example\x07link\x1b]8;;\x07\x1b[2J\u202e",
    "`<!channel>` *bold* _it_ ~s~ > quote | pipe \\",
]
texts = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40))


@pytest.fixture(scope="module")
def recurring(request):
    from pollwatch.playbook import load_watch
    from tests.conftest import KZ_WATCH

    w = load_watch(KZ_WATCH)
    _, events = _nights(w, [NIGHT + timedelta(days=d) for d in (0, 1, 2, 4)], shift={3: timedelta(hours=2)})
    return w, events[-1]


def _spoiled(event, text: str):
    inc = event.incident.model_copy(deep=True)
    inc.pattern = inc.pattern.model_copy(update={"timezone": text, "local_start": text, "period": text})
    inc.episodes = [e.model_copy(update={"note": text, "local_start": text, "local_end": text}) for e in inc.episodes]
    return event.model_copy(update={"incident": inc, "reasons": [text, *event.reasons]})


def _no_markup_from(text: str, out: str, md: bool = False) -> None:
    for tag in ("<script", "<img", "<!channel>", "<https://evil"):
        if tag in text:
            assert not re.search(("(?<!\\\\)" if md else "") + re.escape(tag), out), out


FAST = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@FAST
@given(text=texts)
def test_slack_and_the_console_show_a_spoiled_schedule_as_text(recurring, text):
    w, event = recurring
    ev = _spoiled(event, text)
    for msg in (
        root_message(w, ev.incident, key="k"),
        update_message(w, ev.incident, key="k", reasons=ev.reasons),
    ):
        fields = [msg.text, *_mrkdwn_texts([b if isinstance(b, dict) else b.to_dict() for b in msg.blocks])]
        _assert_inert([f.replace("<!here>", "") for f in fields])
    console = terminal_safe(render_text(w, ev))
    assert "\x1b" not in console and "\x07" not in console and "\u202e" not in console


@FAST
@given(text=texts)
def test_the_report_and_the_statement_draft_show_a_spoiled_schedule_as_text(recurring, text):
    w, event = recurring
    ev = _spoiled(event, text)
    with store.session_scope() as s:
        store.save_incidents(s, [ev.incident])
    with store.session_scope() as s:
        since, until = NIGHT - timedelta(hours=1), NIGHT + timedelta(days=6)
        html = report.render_html(report.collect(s, w, since, until, max_charts=0))
        data = brief.collect(s, w, since=since, until=until)
    md, draft_html = brief.render(data, "md"), brief.render(data, "html")
    for name, out in (("report", html), ("draft", draft_html)):
        _no_markup_from(text, out)
        assert "\x1b" not in out, name
    _no_markup_from(text, md, md=True)
    for line in md.splitlines():  # no line of the draft made a heading, a list item or an underline by the text
        assert not re.match(r"\\?#+ forged|- \\?\[click|={3,}", line), line
