"""Audit tasks: the flow-run entries of the audit log, and the report build, as Prefect tasks.

The core (`pollwatch.audit`) records; these wrappers add what only Prefect knows (the flow run
id, its deployment and parameters) and retries. Each opens its own store session.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from pollwatch import audit, report, store
from pollwatch.playbook import Watch


def _run_context() -> tuple[str | None, str | None, str, dict[str, Any]]:
    from prefect.runtime import deployment, flow_run

    run_id = flow_run.get_id()
    return (str(run_id) if run_id else None, deployment.get_name(), flow_run.get_flow_name() or "?",
            dict(flow_run.get_parameters() or {}))


@task(name="audit-run-start", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 2, 5])
def audit_run_start(watch: str | None, playbook_hash: str | None) -> int:
    """Record that this flow run began (id, deployment, parameters, playbook hash, version)."""
    run_id, dep, flow, params = _run_context()
    with store.session_scope() as s:
        return audit.record_run_start(s, watch=watch, flow_run_id=run_id, flow=flow, deployment=dep, parameters=params,
                                      playbook_hash=playbook_hash).seq


@task(name="audit-run-end", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 2, 5])
def audit_run_end(watch: str | None, state: str, summary: dict[str, Any] | None = None) -> int:
    """Record that this flow run finished, with its state and summary."""
    run_id, _, flow, _ = _run_context()
    with store.session_scope() as s:
        return audit.record_run_end(s, watch=watch, flow_run_id=run_id, flow=flow, state=state, summary=summary).seq


@task(name="build-report", cache_policy=NO_CACHE, retries=1)
def build_report_task(watch: Watch, since: datetime, until: datetime, out: str | None, max_charts: int = 24) -> report.ReportResult:
    """Collect the watch's record for the range, write the HTML, record its hash."""
    return report.build_report(watch, since, until, out, max_charts=max_charts)
