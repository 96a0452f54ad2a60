"""Audit hooks and tasks: every flow run's start and end in the audit log, and the report build.

Flows opt in with `@flow(..., **AUDIT_HOOKS)`: Prefect calls the hooks when the run starts
running and when it ends (completed, failed, crashed or cancelled), with the flow run's id,
deployment and parameters. The playbook content hash comes from the watch the run names.
The other audit entries (observation batches, decisions, alerts) are written by
`tasks/record.py` and `pollwatch.store` in the same transaction as the data they describe.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from pollwatch import audit, report, store
from pollwatch.playbook import Watch

log = logging.getLogger("pollwatch.audit")


def _watch_of(parameters: dict[str, Any]) -> tuple[str | None, str | None]:
    """(watch name, playbook content hash) of the watch a run names, if it names one."""
    name = parameters.get("watch")
    if isinstance(name, Watch):
        return name.name, name.content_hash
    if not name:
        return None, None
    from pollwatch.playbook import find_watch, load_watch_cached

    try:
        w = load_watch_cached(find_watch(str(name)))
        return w.name, w.content_hash
    except Exception:  # the flow itself will report a bad watch; the run is still recorded
        return str(name), None


def _deployment_name(flow_run: Any) -> str | None:
    if getattr(flow_run, "deployment_id", None) is None:
        return None
    try:
        from prefect.runtime import deployment

        return deployment.get_name() or str(flow_run.deployment_id)
    except Exception:
        return str(flow_run.deployment_id)


# flows that write to the replay store (pollwatch.store): their runs are audited there, not in the live log
REPLAY_FLOWS = frozenset({"replay"})


def _store_of(flow: Any) -> str:
    return store.REPLAY if flow.name in REPLAY_FLOWS else store.store_kind()


def _on_running(flow: Any, flow_run: Any, state: Any) -> None:
    params = dict(flow_run.parameters or {})
    watch, content_hash = _watch_of(params)
    with store.using(_store_of(flow)), store.session_scope() as s:
        audit.record_run_start(
            s,
            watch=watch,
            flow_run_id=str(flow_run.id),
            flow=flow.name,
            deployment=_deployment_name(flow_run),
            parameters=params,
            playbook_hash=content_hash,
        )


def _summary(state: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"message": (state.message or "")[:500]}
    if state.is_completed():
        try:
            result = state.result(raise_on_failure=False)
        except Exception:
            result = None
        if isinstance(result, dict):  # keep the small scalar figures, not incident lists
            out.update(
                {k: v for k, v in result.items() if isinstance(v, (int, float, str, bool)) and len(str(v)) < 200}
            )
    return out


def _on_finished(flow: Any, flow_run: Any, state: Any) -> None:
    watch, _ = _watch_of(dict(flow_run.parameters or {}))
    with store.using(_store_of(flow)), store.session_scope() as s:
        audit.record_run_end(
            s, watch=watch, flow_run_id=str(flow_run.id), flow=flow.name, state=state.name, summary=_summary(state)
        )


AUDIT_HOOKS: dict[str, list[Any]] = {
    "on_running": [_on_running],
    "on_completion": [_on_finished],
    "on_failure": [_on_finished],
    "on_crashed": [_on_finished],
    "on_cancellation": [_on_finished],
}


@task(name="build-report", cache_policy=NO_CACHE, retries=1)
def build_report_task(
    watch: Watch, since: datetime, until: datetime, out: str | None, max_charts: int = 24
) -> report.ReportResult:
    """Collect the watch's record for the range, write the HTML, record its hash."""
    return report.build_report(watch, since, until, out, max_charts=max_charts)
