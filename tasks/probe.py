"""Probe tasks: web probes and diffscans on a vantage, and the tick-side fan-out to all vantages.

- `webprobe_task` / `diffscan_task` run inside `flows/probe.py` on the vantage's worker: one
  task run per instrument per tick, with asyncio concurrency inside (never a task per probe).
- `probe_vantages` runs in the watch tick: it starts the probe flow's deployment on every
  vantage's work pool with `run_deployment(timeout=...)`, gathers the observations, and turns a
  vantage that does not answer (or fails) into gaps plus an operator notice, never an outage.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field

from pollwatch.models import Gap, Notice, NoticeLevel, Observation, entity_key
from pollwatch.playbook import Vantage, Watch
from pollwatch.probes import diffscan as ds
from pollwatch.probes import webprobe as wp
from pollwatch.probes.targets import baseline_path, diffscan_targets
from pollwatch.settings import get_settings

PROBE_FLOW = "vantage-probe"


class DiffscanOutcome(BaseModel):
    observations: list[Observation] = Field(default_factory=list)
    result: ds.DiffscanResult | None = None
    baseline_built: bool = False
    message: str = ""


class VantageOutcome(BaseModel):
    """What the tick learned from its vantages."""

    observations: list[Observation] = Field(default_factory=list)
    gaps: list[Gap] = Field(default_factory=list)
    notices: list[Notice] = Field(default_factory=list)
    answered: list[str] = Field(default_factory=list)
    silent: list[str] = Field(default_factory=list)


def enabled(watch: Watch, source: str, default: bool) -> bool:
    cfg = watch.sources.get(source)
    return default if cfg is None else cfg.enabled


@task(name="webprobe", task_run_name="webprobe-{vantage.name}", cache_policy=NO_CACHE)
async def webprobe_task(watch: Watch, vantage: Vantage, tick: datetime) -> list[Observation]:
    """Probe every service of the watch from this vantage and aggregate per (vantage ASN, service)."""
    opts = wp.options_for(watch)
    results = await wp.run_webprobes(watch.services, opts, resolver=vantage.resolver, started_at=None)
    get_run_logger().info("web probes from %s: %s", vantage.name, wp.summary(results))
    return wp.webprobe_observations(results, watch, vantage, tick)


@task(name="diffscan", task_run_name="diffscan-{vantage.name}", cache_policy=NO_CACHE)
async def diffscan_task(
    watch: Watch, vantage: Vantage, tick: datetime, rebuild_baseline: bool = False
) -> DiffscanOutcome:
    """Sweep the country's prefixes from this vantage against its baseline (building one first if needed)."""
    logger = get_run_logger()
    opts = ds.options_for(watch.sources)
    if opts.time_budget is None:  # the sweep must end before the tick stops waiting for this vantage
        phase = watch.phase_at(tick)
        cadence = phase.cadence if phase else timedelta(minutes=5)
        opts = opts.model_copy(update={"time_budget": max(0.75 * vantage_timeout(watch, cadence) - opts.timeout, 1.0)})
    targets = await diffscan_targets(watch, opts)
    path = baseline_path(get_settings().home, watch.name, vantage.name)
    baseline = None if rebuild_baseline else ds.DiffscanBaseline.load(path)
    if baseline is None:
        result, table = await ds.run_diffscan(targets, opts)
        built = ds.baseline_from(table, opts, tick)
        built.save(path)
        msg = (
            f"diffscan baseline from {vantage.name}: {len(built.blocks)} responsive /24s of {len(table)} probed "
            f"({result.probes} probes)"
        )
        if not result.complete:
            msg += (
                "; the time budget ran out, so blocks not reached are left out of the baseline (rebuild it "
                "with a larger time_budget)"
            )
        logger.info(msg)
        # a baseline sweep has nothing to be compared with yet: no observations this tick
        return DiffscanOutcome(result=result, baseline_built=True, message=msg)
    result, _ = await ds.run_diffscan(targets, opts, baseline)
    obs = ds.diffscan_observations(result, watch.country or "", tick, vantage=vantage.name)
    msg = f"diffscan from {vantage.name}: {result.probes} probes, {len(result.down_blocks)} /24s down" + (
        "" if result.complete else " (time budget ran out)"
    )
    logger.info(msg)
    return DiffscanOutcome(observations=obs, result=result, message=msg)


def vantage_timeout(watch: Watch, cadence: timedelta) -> float:
    """Seconds the tick waits for its vantages: `sources.vantages.timeout`, else 60% of the cadence (at most 4 min)."""
    cfg = watch.sources.get("vantages")
    if cfg is not None:
        return cfg.timeout.total_seconds()
    return min(0.6 * cadence.total_seconds(), 240.0)


def deployment_name(vantage: Vantage) -> str:
    """`<flow>/<deployment>` of a vantage's probe deployment (one deployment per vantage)."""
    return f"{PROBE_FLOW}/{vantage.name}"


def _silent(watch: Watch, vantage: Vantage, tick: datetime, span: timedelta, why: str) -> tuple[list[Gap], Notice]:
    """A vantage without an answer: gaps on everything it should have measured, and a notice."""
    country = watch.country or ""
    gaps: list[Gap] = []
    if enabled(watch, wp.SOURCE, True):
        for svc in watch.services:
            gaps.append(
                Gap(
                    source=wp.SOURCE,
                    entity=entity_key(country, vantage.location, vantage.asn, svc.name),
                    start=tick - span,
                    end=tick,
                    reason=f"vantage {vantage.name}: {why}",
                )
            )
    if enabled(watch, ds.SOURCE, False) and ds.SOURCE in watch.sources:
        gaps.append(
            Gap(
                source=ds.SOURCE,
                signal="diffscan",
                entity=country,
                start=tick - span,
                end=tick,
                reason=f"vantage {vantage.name}: {why}",
            )
        )
    notice = Notice(
        time=tick,
        level=NoticeLevel.warning,
        source="vantage",
        watch=watch.name,
        message=f"vantage {vantage.name} (work pool {vantage.work_pool}) {why}; its measurements for this tick are "
        "missing (a gap, not an outage)",
    )
    return gaps, notice


async def _run_one(
    watch: Watch, vantage: Vantage, tick: datetime, timeout: float, poll_interval: float
) -> tuple[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.deployments.flow_runs import arun_deployment
    from prefect.states import Cancelled

    try:
        run = await arun_deployment(
            deployment_name(vantage),
            parameters={"watch": watch.model_dump(mode="json"), "vantage": vantage.name, "tick": tick.isoformat()},
            timeout=timeout,
            poll_interval=poll_interval,
            idempotency_key=f"{watch.name}:{vantage.name}:{tick.isoformat()}",  # a re-run tick reuses the run
            flow_run_name=f"probe-{vantage.name}-{tick:%Y%m%dT%H%M}",
            as_subflow=False,
        )
    except Exception as exc:  # no deployment for this vantage, API unreachable...
        return "error", f"could not be started: {type(exc).__name__}: {exc}"
    state = run.state
    if state is None or not state.is_final():
        async with get_client() as client:  # a late run must not probe a tick that is over
            await client.set_flow_run_state(run.id, Cancelled(message=f"no answer within {timeout:g}s"), force=True)
        return (
            "silent",
            f"did not answer within {timeout:g}s (flow run {run.id} was {state.name if state else 'unknown'}; "
            "cancelled)",
        )
    if not state.is_completed():
        return "error", f"probe flow run {run.id} ended {state.name}: {state.message or ''}".strip()
    try:
        return "ok", await state.aresult(raise_on_failure=True)
    except Exception as exc:
        return (
            "error",
            f"probe flow run {run.id} completed but its result could not be read ({type(exc).__name__}: {exc}); "
            "check the result storage",
        )


@task(name="probe-vantages", cache_policy=NO_CACHE)
async def probe_vantages(
    watch: Watch, tick: datetime, timeout: float, span: timedelta, poll_interval: float = 2.0
) -> VantageOutcome:
    """Start the probe flow on every vantage at once; silent or failed vantages become gaps + notices."""
    logger = get_run_logger()
    outcome = VantageOutcome()
    answers = await asyncio.gather(*(_run_one(watch, v, tick, timeout, poll_interval) for v in watch.vantages))
    for vantage, (status, payload) in zip(watch.vantages, answers):
        if status == "ok":
            outcome.answered.append(vantage.name)
            outcome.observations += [Observation.model_validate(o) for o in payload.get("observations", [])]
            outcome.notices += [Notice.model_validate(n) for n in payload.get("notices", [])]
            continue
        outcome.silent.append(vantage.name)
        gaps, notice = _silent(watch, vantage, tick, span, payload)
        outcome.gaps += gaps
        outcome.notices.append(notice)
        logger.warning(notice.message)
    return outcome
