"""The public statement: a draft in an observatory's register, written from the store alone.

`collect()` reads a watch's incidents (with any responder's override), the anomalies behind them
and the observations for their charts; `statement()` turns them into a list of blocks (headline,
what, where, when, services, depth, how measured, likely cause, charts, methodology); the
renderers write Markdown or HTML (all outside text escaped). Every sentence is made from those
records: a number that is not in the store is not in the draft, an uncertain point carries its
confidence, and a responder's cause wins over the scorer's. `incident_statement()` gives the
Markdown draft of one incident, for Slack (the "Draft statement" button, the thread on resolve).

Modules: `data` (collect), `sentences` (one incident in words), `statement` (the blocks), `writers`
(Markdown, HTML, the file and its audit entry).
"""

from pollwatch.brief.data import BriefData, collect, default_range
from pollwatch.brief.sentences import confidence_word, subject, when_text
from pollwatch.brief.statement import Block, headline, methodology, statement
from pollwatch.brief.writers import Format, incident_statement, render, render_html, render_markdown, write_brief

__all__ = [
    "Block",
    "BriefData",
    "Format",
    "collect",
    "confidence_word",
    "default_range",
    "headline",
    "incident_statement",
    "methodology",
    "render",
    "render_html",
    "render_markdown",
    "statement",
    "subject",
    "when_text",
    "write_brief",
]
