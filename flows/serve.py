"""`pollwatch serve`: a watch's phase deployments served from one long-lived process.

The deployments are the ones `pollwatch schedule` makes (one per phase, RRule schedules bounded
to the phase, one run at a time per deployment, the watch's global concurrency limit), applied
the same way: phases the watch no longer has are deleted, a watch paused with `pollwatch pause`
stays paused, and the apply is recorded in the audit log. Running `serve` again updates the same
deployments; it never adds any. A deployment `pollwatch schedule` put on a work pool is replaced
(Prefect's upsert would keep its pool, path and pull steps, and its workers would still take its
runs); its run history stays.

What Prefect's own `serve()` does not:
- Stopping (SIGTERM or SIGINT, e.g. Ctrl-C) drains: no new tick starts, a tick in progress may
  finish (up to `grace` seconds; then it is cancelled), the deployments are paused (so no runs
  pile up while nothing serves them; the next `serve` or `schedule` resumes them) and the
  process exits 0. A second signal stops at once. Prefect's `serve` cancels the tick in progress
  on SIGTERM and, on SIGINT, leaves it in Running.
- With no Prefect server configured (PREFECT_API_URL unset), the temporary local API runs no
  scheduler service, so no scheduled run would ever be created: this process then asks the API
  to schedule its deployments' runs itself, as the server's scheduler would.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy, StateType
from prefect.logging import get_logger
from prefect.runner import Runner

from pollwatch.flows.prefect_compat import local_api_server, run_processes, runner_serving, stop_polling
from pollwatch.flows.scheduling import coordinator_paused, sync_watch
from pollwatch import schedule as sched
from pollwatch import store
from pollwatch.playbook import Watch

EMBEDDED_SCHEDULE_SECONDS = 10.0  # how often the process schedules runs itself when no server's scheduler does
_IN_FLIGHT = [StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]
logger = get_logger("pollwatch.serve")


@dataclass
class Served:
    """What `serve_watch()` applied before it started serving."""

    deployments: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    paused: bool = False  # paused with `pollwatch pause`: served, but no ticks until `pollwatch resume`
    previous_hash: str | None = None  # set when the playbook changed since it was last applied
    embedded_scheduler: bool = False  # no server: this process schedules the runs
    # deployment -> the work pool whose workers ran it until now (replaced)
    from_pools: dict[str, str] = field(default_factory=dict)


class _DrainingRunner(Runner):
    """A Runner that, on its first SIGTERM/SIGINT, lets the ticks in progress finish before it stops."""

    def __init__(self, *args: Any, grace: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.grace = grace
        self.deployment_ids: list[UUID] = []
        self._draining = False

    def handle_sigterm(self, *args: Any, **kwargs: Any) -> None:
        if self._draining or not runner_serving(self):
            super().handle_sigterm(*args, **kwargs)  # a second signal, or not serving yet: stop now
            return
        self._draining = True
        logger.info("Stopping: no new ticks; waiting up to %.0f s for the ticks in progress", self.grace)
        stop_polling(self)
        threading.Thread(target=self._drain, name="pollwatch-serve-drain", daemon=True).start()

    def _in_flight(self) -> int:
        """Runs of the served deployments not finished yet, and run processes that have not exited (a
        run's process outlives its final state a little; stopping the runner then would cancel it)."""
        processes = run_processes(self)
        with get_client(sync_client=True) as client:
            return processes + len(
                client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        deployment_id=FlowRunFilterDeploymentId(any_=self.deployment_ids),
                        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=_IN_FLIGHT)),
                    )
                )
            )

    def _drain(self) -> None:
        deadline = time.monotonic() + self.grace
        try:
            while time.monotonic() < deadline and self._in_flight():
                time.sleep(0.5)
        except Exception:  # the API is gone: nothing to wait for
            logger.warning("Could not check for ticks in progress; stopping", exc_info=True)
        if not self.stopping:
            self.stopping = True
            self.execute_in_background(self.astop)  # cancels what is still running, then pauses the deployments


def _schedule_runs(deployment_ids: list[UUID]) -> None:
    """Create the next scheduled runs of the (unpaused) deployments, as the server's scheduler service does."""
    with get_client(sync_client=True) as client:
        for dep_id in deployment_ids:
            if not client.read_deployment(dep_id).paused:
                client.request(
                    "POST", "/deployments/{id}/schedule", path_params={"id": dep_id}, json={}
                ).raise_for_status()


def _embedded_scheduler(deployment_ids: list[UUID], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            _schedule_runs(deployment_ids)
        except Exception:
            logger.warning("Could not schedule the next runs; retrying", exc_info=True)
        stop.wait(EMBEDDED_SCHEDULE_SECONDS)


def _local_api(stack: ExitStack) -> None:
    """Start the temporary local API for this process and every run it starts (they would each start
    their own otherwise, and lose the deployment's concurrency slot, which lives in the API process)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings

    server = local_api_server()
    server.start(timeout=PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    stack.callback(server.stop)
    os.environ["PREFECT_API_URL"] = server.api_url  # inherited by the runs' processes
    stack.callback(os.environ.pop, "PREFECT_API_URL", None)
    stack.enter_context(temporary_settings(updates={PREFECT_API_URL: server.api_url}))


def serve_watch(
    watch: Watch,
    observations: str | None = None,
    limit: int | None = None,
    grace: float = 60.0,
    announce: Callable[[Served], None] | None = None,
) -> Served:
    """Apply the watch's per-phase deployments and serve them from this process until it is told to stop."""
    from prefect.settings import PREFECT_API_URL

    with ExitStack() as stack:
        embedded = not PREFECT_API_URL.value()
        if embedded:
            _local_api(stack)
        return _serve(watch, observations, limit, grace, announce, embedded)


def _serve(
    watch: Watch,
    observations: str | None,
    limit: int | None,
    grace: float,
    announce: Callable[[Served], None] | None,
    embedded: bool,
) -> Served:
    import asyncio

    from prefect.schedules import RRule

    from pollwatch.flows.watch_tick import watch_tick

    specs = sched.phase_schedules(watch)
    result = Served(paused=coordinator_paused(watch.name), embedded_scheduler=embedded)
    parameters: dict[str, Any] = {"watch": str(Path(watch.source_file or watch.name).resolve())}
    if observations:
        parameters["observations"] = str(Path(observations).resolve())
    with get_client(sync_client=True) as client:
        existing, result.removed = sync_watch(client, watch, specs)
        for name, dep in existing.items():
            # made by `pollwatch schedule`: replaced, since an upsert keeps its pool, path and pull steps
            if dep.work_pool_name:
                client.delete_deployment(dep.id)
                result.from_pools[name] = dep.work_pool_name
    # a run is started up to `prefetch` before its time and holds the deployment's one slot while it
    # waits: at most half the shortest cadence, so it never waits on the tick before it
    prefetch = min([10.0] + [s.cadence.total_seconds() / 2 for s in specs])
    runner = _DrainingRunner(
        name=f"pollwatch-{sched.deployment_name(watch.name, 'serve')}",
        pause_on_shutdown=True,
        limit=limit,
        prefetch_seconds=prefetch,
        grace=grace,
    )
    for spec in specs:
        runner.deployment_ids.append(
            runner.add_deployment(
                watch_tick.to_deployment(
                    name=spec.deployment,
                    description=f"{watch.name}: {spec.phase} phase, served by `pollwatch serve`",
                    schedules=[
                        RRule(r.rrule, timezone=r.timezone, slug=f"{spec.phase}-{i}") for i, r in enumerate(spec.rules)
                    ],
                    parameters=parameters,
                    concurrency_limit=ConcurrencyLimitConfig(
                        limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE
                    ),
                    tags=["pollwatch", sched.watch_tag(watch.name), f"phase:{spec.phase}"],
                    version=(watch.content_hash or "")[:12] or None,
                    paused=result.paused,
                )
            )
        )
        result.deployments.append(spec.deployment)
    with store.session_scope() as s:
        result.previous_hash = sched.record_applied(s, watch, specs, result.removed)
    if announce:
        announce(result)

    stop = threading.Event()
    if result.embedded_scheduler:
        threading.Thread(
            target=_embedded_scheduler,
            args=(runner.deployment_ids, stop),
            name="pollwatch-serve-scheduler",
            daemon=True,
        ).start()
    # SIGINT drains like SIGTERM (asyncio.run keeps a handler that is already set); Runner.start sets SIGTERM's
    previous = {sig: signal.signal(sig, runner.handle_sigterm) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        asyncio.run(runner.start())
    finally:
        stop.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return result
