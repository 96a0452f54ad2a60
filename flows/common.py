"""Helpers the flows share: loading a watch from a flow parameter, the current flow run and its schedule."""

from __future__ import annotations

from datetime import datetime

from pollwatch.playbook import Watch, find_watch, load_watch_cached
from pollwatch.timeutil import parse_time


def resolve_watch(watch: str) -> Watch:
    """A flow parameter names a watch by path or by its name under playbooks/watches/."""
    return load_watch_cached(find_watch(watch))


def current_flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    return str(run_id) if run_id else None


def scheduled_time() -> datetime | None:
    """The scheduled start time of the current flow run when it belongs to a deployment, else None."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    run = ctx.flow_run if ctx else None
    if run is None or run.deployment_id is None or run.expected_start_time is None:
        return None
    return parse_time(run.expected_start_time)  # a plain datetime: Prefect's DateTime plus a timedelta is naive
