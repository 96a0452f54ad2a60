"""Reports for auditors and partners: one self-contained HTML file and a #KeepItOn CSV export.

- `data`: `collect()` gathers, for a watch and a time range, what pollwatch saw and decided
  (incidents with their evidence, the signals against the detector's own expectation, alerts, data
  gaps and blind spots, overrides, the state of the audit chain) into a `ReportData`.
- `html` renders it from the Jinja2 templates in `templates/` (autoescaped; inline CSS and SVG, no
  scripts, a Content Security Policy that forbids loading anything) with the geometry of `charts`.
- `keepiton` maps incidents to Access Now's #KeepItOn STOP vocabulary; `summary` gives the short
  forms the report flow publishes as Prefect artifacts; `build` is the one call of the CLI and the flow.
"""

from pollwatch.report.build import ReportResult, build_report, default_path, write_audited
from pollwatch.report.data import ReportData, SentAlert, Series, collect
from pollwatch.report.html import render_html, write_html
from pollwatch.report.keepiton import KEEPITON_COLUMNS, keepiton_csv_text, keepiton_rows, write_keepiton_csv
from pollwatch.report.summary import incident_table, markdown_summary
from pollwatch.sinks import OutputError

__all__ = [
    "KEEPITON_COLUMNS",
    "OutputError",
    "ReportData",
    "ReportResult",
    "SentAlert",
    "Series",
    "build_report",
    "collect",
    "default_path",
    "incident_table",
    "keepiton_csv_text",
    "keepiton_rows",
    "markdown_summary",
    "render_html",
    "write_html",
    "write_audited",
    "write_keepiton_csv",
]
