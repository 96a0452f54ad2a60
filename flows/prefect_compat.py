"""Every use of Prefect's private parts, in one place.

`pollwatch serve` drains on SIGTERM: it stops taking scheduled runs, waits for the ticks in progress
(including run processes that outlive their final state a little) and only then stops. Prefect's Runner
has no public API for that, so this module reads its internals, and starts Prefect's local API server
in a subprocess the way the ephemeral mode does. pyproject.toml pins Prefect to the minor version tested;
tests/flows/test_prefect_compat.py fails when an installed Prefect no longer has what is read here.
"""

from __future__ import annotations

from typing import Any

from prefect.runner import Runner

# the Runner attributes read below, for tests/flows/test_prefect_compat.py
RUNNER_INTERNALS = ("_loop", "_process_manager", "started", "stopping")


def runner_serving(runner: Runner) -> bool:
    """Whether the runner's loop is up (a SIGTERM before that should stop it at once)."""
    return bool(runner.started) and getattr(runner, "_loop", None) is not None


def stop_polling(runner: Runner) -> None:
    """Take no more scheduled runs (the poller exists once the runner has started)."""
    poller = getattr(runner, "_scheduled_run_poller", None)
    if poller is not None:
        poller.stopping = True


def run_processes(runner: Runner) -> int:
    """Run processes the runner started that have not exited yet."""
    manager = getattr(runner, "_process_manager", None)
    return manager.flow_run_count() if hasattr(manager, "flow_run_count") else 0


def local_api_server() -> Any:
    """Prefect's API server in a subprocess on a free local port (what the ephemeral mode starts per process)."""
    from prefect.server.api.server import SubprocessASGIServer

    return SubprocessASGIServer()
