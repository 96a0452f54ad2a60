"""One call for the CLI and the report flow: collect, write the HTML, record the file's SHA-256 in the audit log."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel

from pollwatch import audit, store
from pollwatch.playbook import Watch
from pollwatch.progress import step
from pollwatch.report.data import collect
from pollwatch.report.html import write_html
from pollwatch.report.summary import incident_table, markdown_summary
from pollwatch.sinks import OutputError, safe_file_name


class ReportResult(BaseModel):
    path: str
    sha256: str
    incidents: int
    alerts: int
    charts: int
    audit_ok: bool
    audit_entry: int
    markdown: str
    table: list[dict[str, Any]]


def default_path(watch: Watch, since: datetime) -> Path:
    """`reports/<watch>-<from>.html`; the watch's name made one file name, so it stays in reports/."""
    return Path("reports") / f"{safe_file_name(watch.name)}-{since.astimezone(timezone.utc):%Y%m%dT%H%MZ}.html"


def write_audited(
    watch: Watch, path: Path, what: str, params: dict[str, Any], write: Callable[[], Any], url: str | None = None
) -> Any:
    """Write a report or an export with `write()`, and enter it in the audit log: its SHA-256 (the entry is
    returned), or the failure, before the `OutputError` goes on."""
    try:
        write()
    except OutputError as exc:
        with store.session_scope(url) as s:
            audit.record_report_failure(s, watch=watch.name, path=path, what=what, error=str(exc), params=params)
        raise
    with store.session_scope(url) as s:
        return audit.record_report(s, watch=watch.name, path=path, what=what, params=params)


def build_report(
    watch: Watch,
    since: datetime,
    until: datetime,
    out: str | Path | None = None,
    max_charts: int = 24,
    url: str | None = None,
) -> ReportResult:
    """Collect, write the HTML, and record the file's SHA-256 in the audit log."""
    with store.session_scope(url) as s:
        data = collect(s, watch, since, until, max_charts=max_charts)
    path = Path(out or default_path(watch, since))
    step(f"writing {path.name}")
    params = {"from": since, "until": until, "max_charts": max_charts}
    entry = write_audited(watch, path, "html-report", params, lambda: write_html(data, path), url)
    return ReportResult(
        path=str(path),
        sha256=entry.payload["sha256"],
        incidents=len(data.incidents),
        alerts=len(data.alerts),
        charts=len(data.series),
        audit_ok=bool(data.audit.get("ok")),
        audit_entry=entry.seq,
        markdown=markdown_summary(data, str(path)),
        table=incident_table(data),
    )
