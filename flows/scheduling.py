"""Scheduling: a watch's phases as Prefect deployments of the watch-tick flow, applied idempotently.

`apply_schedule()` creates or updates one deployment per phase (`<watch>-<phase>`), each with the
phase's bounded RRule schedules (pollwatch.schedule), `concurrency_limit=1`, the tags
`pollwatch`, `watch:<name>` and `phase:<name>`, and the playbook's hash as its version. Prefect
upserts a deployment by (flow, name) and replaces its schedules and future auto-scheduled runs,
so re-applying after an edit leaves no duplicates; deployments of phases that no longer exist
are deleted; a watch with vantages also gets its vantage-probe deployments, one per vantage on
the vantage's work pool (flows/probe.py). A global concurrency limit named after the watch (one slot) keeps ticks of
different phases, or a manual tick, from overlapping. Everything applied is recorded in
pollwatch's audit log; a changed playbook is recorded as such.

`apply_watches_schedule()` deploys a directory of watches as batched lanes of the watches-tick flow
(`pollwatch schedule-all`): re-applied, it updates the lanes and deletes those beyond a smaller `lanes`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate, WorkPoolCreate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags
from prefect.client.schemas.objects import ConcurrencyLimitStrategy, ConcurrencyOptions
from prefect.client.schemas.schedules import RRuleSchedule
from prefect.exceptions import ObjectNotFound

from pollwatch import schedule as sched
from pollwatch import store
from pollwatch.playbook import Watch
from pollwatch.timeutil import format_duration

REPO = Path(__file__).resolve().parent.parent
DEFAULT_POOL = "pollwatch-analysis"


@dataclass
class Applied:
    """What `apply_schedule()` did."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    previous_hash: str | None = None  # set when the playbook changed since it was last scheduled
    work_pool_created: bool = False
    vantages: list[str] = field(default_factory=list)  # vantage-probe deployments (one per vantage, on its pool)


def watch_parameter(watch: Watch) -> str:
    """How a deployment names its watch: a path relative to the project when it lives in it."""
    path = Path(watch.source_file or watch.name).resolve()
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def _schedules(spec: sched.PhaseSchedule) -> list[DeploymentScheduleCreate]:
    return [
        DeploymentScheduleCreate(
            schedule=RRuleSchedule(rrule=r.rrule, timezone=r.timezone), active=True, slug=f"{spec.phase}-{i}"
        )
        for i, r in enumerate(spec.rules)
    ]


def _parameter_schema() -> dict[str, Any]:
    from prefect.utilities.callables import parameter_schema

    from pollwatch.flows.watch_tick import watch_tick

    return parameter_schema(watch_tick).model_dump_for_openapi()


def watch_deployments(client: Any, watch_name: str) -> list[Any]:
    """The Prefect deployments that belong to a watch (by its tag)."""
    return client.read_deployments(
        deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[sched.watch_tag(watch_name)]))
    )


def ensure_work_pool(client: Any, name: str) -> bool:
    """Create a process work pool when it does not exist yet; True if it was created."""
    try:
        client.read_work_pool(name)
        return False
    except ObjectNotFound:
        client.create_work_pool(
            WorkPoolCreate(name=name, type="process", description="pollwatch analysis (watch ticks)")
        )
        return True


def coordinator_paused(watch_name: str) -> bool:
    """Paused with `pollwatch pause` (pollwatch's audit log), whatever a stopped `serve` left in Prefect."""
    with store.session_scope() as s:
        return sched.watch_paused(s, watch_name)


def sync_watch(client: Any, watch: Watch, specs: list[sched.PhaseSchedule]) -> tuple[dict[str, Any], list[str]]:
    """The watch's deployments by name, after deleting those of phases it no longer has (their names
    are returned too); and the watch's global concurrency limit (one slot), created or kept."""
    existing = {d.name: d for d in watch_deployments(client, watch.name)}
    wanted = {s.deployment for s in specs}
    removed = []
    for name, dep in existing.items():
        if name not in wanted:
            client.delete_deployment(dep.id)
            removed.append(name)
    client.upsert_global_concurrency_limit_by_name(sched.concurrency_limit_name(watch.name), limit=1)
    return {n: d for n, d in existing.items() if n in wanted}, removed


def apply_schedule(
    watch: Watch, work_pool: str = DEFAULT_POOL, observations: str | None = None, create_pool: bool = True
) -> Applied:
    """Create or update the watch's per-phase deployments and remove those of phases it no longer has."""
    specs = sched.phase_schedules(watch)
    result = Applied()
    parameters: dict[str, Any] = {"watch": watch_parameter(watch)}
    if observations:
        parameters["observations"] = str(Path(observations).resolve())
    paused = coordinator_paused(watch.name)
    with get_client(sync_client=True) as client:
        if create_pool:
            result.work_pool_created = ensure_work_pool(client, work_pool)
        existing, result.removed = sync_watch(client, watch, specs)
        flow_id = client.create_flow_from_name(sched.FLOW_NAME)
        schema = _parameter_schema()
        for spec in specs:
            before = existing.get(spec.deployment)
            client.create_deployment(
                flow_id=flow_id,
                name=spec.deployment,
                version=(watch.content_hash or "")[:12] or None,
                description=(
                    f"{watch.name}: {spec.phase} phase, every {format_duration(spec.cadence)}, "
                    f"{spec.ticks} ticks from {spec.first_tick} to {spec.last_tick} (UTC)"
                ),
                schedules=_schedules(spec),
                concurrency_limit=1,
                concurrency_options=ConcurrencyOptions(collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
                parameters=parameters,
                work_pool_name=work_pool,
                tags=["pollwatch", sched.watch_tag(watch.name), f"phase:{spec.phase}"],
                path=str(REPO),
                entrypoint=sched.ENTRYPOINT,
                pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}],
                parameter_openapi_schema=schema,
                enforce_parameter_schema=True,
                paused=paused,  # re-applying keeps a paused watch paused (and resumes one a stopped `serve` paused)
            )
            (result.updated if before is not None else result.created).append(spec.deployment)
    if watch.vantages:  # the ticks start the probes on each vantage's own pool (flows/probe.py)
        from pollwatch.flows.probe import deploy_vantages

        deploy_vantages(watch)
        result.vantages = [f"vantage-probe/{v.name}" for v in watch.vantages]
    with store.session_scope() as s:
        result.previous_hash = sched.record_applied(s, watch, specs, result.removed)
    return result


@dataclass
class AppliedWatches:
    """What `apply_watches_schedule()` did."""

    deployments: list[str] = field(default_factory=list)  # the lanes' deployments, created or updated
    removed: list[str] = field(default_factory=list)  # lanes of an earlier apply beyond the new `lanes`
    work_pool_created: bool = False


def watches_tag(name: str) -> str:
    """The tag every lane deployment of a batch carries (how re-applying and `unschedule-all` find them)."""
    return f"watches:{name}"


def watches_deployments(client: Any, name: str) -> list[Any]:
    """The lane deployments of the batch `name` (by its tag)."""
    return client.read_deployments(
        deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[watches_tag(name)]))
    )


def apply_watches_schedule(
    watches: str,
    work_pool: str = DEFAULT_POOL,
    lanes: int = 1,
    every: int = 60,
    name: str = "world",
    base_urls: dict[str, str] | None = None,
    create_pool: bool = True,
) -> AppliedWatches:
    """Deploy batched ticks of every watch in `watches` (a directory of watch files): `lanes` deployments of the
    `watches-tick` flow (`watches-tick-<name>-lane-<i>`), each scheduled every `every` seconds on `work_pool`.
    Each slot gets one run per lane; the workers of the pool take them, and the runs split the due watches
    between them through the watches' tick claims (flows/watches_tick.py), so more workers tick more watches
    and a worker that dies only delays its watches to their next tick. Re-applying updates the lanes in place
    and deletes those an earlier apply made beyond `lanes` (their runs would still be scheduled every slot)."""
    from datetime import datetime, timedelta, timezone

    from prefect.client.schemas.schedules import IntervalSchedule
    from prefect.utilities.callables import parameter_schema

    from pollwatch.flows.watches_tick import FLOW, watches_tick

    result = AppliedWatches()
    schema = parameter_schema(watches_tick).model_dump_for_openapi()
    # slots at multiples of `every` since the Unix epoch: the slots the flow covers (timeutil.floor_time)
    anchor = datetime(1970, 1, 1, tzinfo=timezone.utc)
    with get_client(sync_client=True) as client:
        if create_pool:
            result.work_pool_created = ensure_work_pool(client, work_pool)
        flow_id = client.create_flow_from_name(FLOW)
        for lane in range(lanes):
            dep = sched.deployment_name(f"watches-tick-{name}", f"lane-{lane}")
            parameters: dict[str, Any] = {"watches": str(Path(watches).resolve()), "every": every}
            parameters.update({"lane": lane, "lanes": lanes})
            if base_urls:
                parameters["base_urls"] = base_urls
            client.create_deployment(
                flow_id=flow_id,
                name=dep,
                description=f"every watch in {watches}, batched: lane {lane + 1} of {lanes}, every {every} s",
                schedules=[
                    DeploymentScheduleCreate(
                        schedule=IntervalSchedule(interval=timedelta(seconds=every), anchor_date=anchor),
                        active=True,
                        slug=f"every-{every}s",
                    )
                ],
                parameters=parameters,
                work_pool_name=work_pool,
                tags=["pollwatch", watches_tag(name)],
                path=str(REPO),
                entrypoint="flows/watches_tick.py:watches_tick",
                pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}],
                parameter_openapi_schema=schema,
                enforce_parameter_schema=True,
            )
            result.deployments.append(dep)
        result.removed = _delete_lanes(client, name, keep=set(result.deployments))
    batch = {"name": name, "lanes": lanes, "every": every, "work_pool": work_pool, "deployments": result.deployments}
    with store.session_scope() as s:  # each watch's audit chain says how it is ticked now
        for w in _batch_watches(watches):
            sched.record_applied(s, w, [], result.removed, batch=batch)
    return result


def _batch_watches(watches: str) -> list[Watch]:
    """The watches a batch ticks (its directory's watch files; one that no longer loads is left out)."""
    from pollwatch.flows.watches_tick import watch_files
    from pollwatch.playbook import PlaybookError, load_watch

    out = []
    for f in watch_files(watches):
        try:
            out.append(load_watch(f))
        except PlaybookError:
            continue
    return out


def _delete_lanes(client: Any, name: str, keep: Collection[str] = ()) -> list[str]:
    removed = []
    for dep in watches_deployments(client, name):
        if dep.name not in keep:
            client.delete_deployment(dep.id)
            removed.append(dep.name)
    return sorted(removed)


def remove_watches_schedule(name: str = "world") -> list[str]:
    """Delete every lane deployment of the batch `name` (the watches' recorded ticks stay), recorded in the audit
    chain of each watch its lanes ticked; returns their names."""
    with get_client(sync_client=True) as client:
        dirs = {str(d.parameters.get("watches")) for d in watches_deployments(client, name) if d.parameters}
        removed = _delete_lanes(client, name)
    if removed:
        with store.session_scope() as s:
            for w in {w.name: w for d in sorted(dirs) for w in _batch_watches(d)}.values():
                sched.record_action(s, sched.AUDIT_BATCH_REMOVE, w.name, removed, batch=name)
    return removed


def remove_schedule(watch_name: str) -> list[str]:
    """Delete every deployment of the watch and its concurrency limit; returns the deployments' names."""
    removed = []
    with get_client(sync_client=True) as client:
        for dep in watch_deployments(client, watch_name):
            client.delete_deployment(dep.id)
            removed.append(dep.name)
        try:
            client.delete_global_concurrency_limit_by_name(sched.concurrency_limit_name(watch_name))
        except ObjectNotFound:
            pass
    with store.session_scope() as s:
        sched.record_action(s, sched.AUDIT_REMOVE, watch_name, removed)
    return removed


def set_paused(watch_name: str, paused: bool) -> list[str]:
    """Pause (no new ticks are scheduled; queued ones are dropped) or resume every deployment of the watch."""
    names = []
    with get_client(sync_client=True) as client:
        for dep in watch_deployments(client, watch_name):
            (client.pause_deployment if paused else client.resume_deployment)(dep.id)
            names.append(dep.name)
    if names:
        with store.session_scope() as s:
            sched.record_action(s, sched.AUDIT_PAUSE if paused else sched.AUDIT_RESUME, watch_name, names)
    return names
