"""report: the auditor's report of one watch over a time range, as a Prefect flow.

Writes the self-contained HTML file (pollwatch.report) and publishes two artifacts: a Markdown
summary and a table of incidents. The run itself is recorded in the audit log (AUDIT_HOOKS), and so is the
report file's SHA-256, so a copy shared later can be checked against the log.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from pollwatch.playbook import find_watch, load_watch
from pollwatch.timeutil import parse_time
from pollwatch.tasks.record_audit import AUDIT_HOOKS, build_report_task


def _key(text: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


@flow(name="report", flow_run_name="report-{watch}", log_prints=True, **AUDIT_HOOKS)
def report(
    watch: str,
    since: datetime | None = None,
    until: datetime | None = None,
    out: str | None = None,
    max_charts: int = 24,
) -> dict[str, Any]:
    """Report on `watch` over [since, until) (default: its heightened phase); returns the file and counts."""
    w = load_watch(find_watch(watch))
    if since is None or until is None:
        phases = w.resolved_phases()
        p = min(phases, key=lambda p: p.cadence) if phases else None
        since = since or parse_time(p.start if p else w.at_offset(timedelta(days=-1)))
        until = until or parse_time(p.end if p else w.at_offset(timedelta(days=3)))
    result = build_report_task(w, since, until, out, max_charts)
    create_markdown_artifact(
        key=f"report-{_key(w.name)}", markdown=result.markdown, description=f"pollwatch report for {w.name}"
    )
    create_table_artifact(
        key=f"report-incidents-{_key(w.name)}",
        table=result.table or [{"id": "none"}],
        description=f"Incidents of {w.name} in the report range",
    )
    summary = result.model_dump(mode="json", exclude={"markdown", "table"})
    print(f"report written to {result.path} ({result.incidents} incidents, sha256 {result.sha256})")
    return summary


if __name__ == "__main__":
    import sys

    report(sys.argv[1] if len(sys.argv) > 1 else "kz-2019-presidential")
