"""Helpers the flows share: loading a watch from a flow parameter, the current flow run id."""

from __future__ import annotations

from pollwatch.playbook import Watch, find_watch, load_watch


def resolve_watch(watch: str) -> Watch:
    """A flow parameter names a watch by path or by its name under playbooks/watches/."""
    return load_watch(find_watch(watch))


def current_flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    return str(run_id) if run_id else None
