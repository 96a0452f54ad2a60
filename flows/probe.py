"""vantage-probe: the flow a vantage's worker runs each tick (web probes, then a diffscan).

Deploy it once per vantage, on the vantage's work pool (`pollwatch.playbook.Vantage.work_pool`),
as deployment `vantage-probe/<vantage name>`; see `deploy_vantages` and docs/probes.md. The watch
tick starts it with `run_deployment` (tasks/probe.py: probe_vantages) and reads its result, so the
result is persisted (JSON) in the result storage the tick can read.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from pollwatch.flows.common import resolve_watch
from pollwatch.models import Notice, NoticeLevel
from pollwatch.playbook import Vantage, Watch
from pollwatch.probes import diffscan as ds
from pollwatch.probes import webprobe as wp
from pollwatch.probes.targets import vantage_asn
from pollwatch.tasks.probe import PROBE_FLOW, diffscan_task, enabled, webprobe_task


def _watch(watch: str | dict[str, Any]) -> Watch:
    return Watch.model_validate(watch) if isinstance(watch, dict) else resolve_watch(watch)


def _vantage(w: Watch, name: str) -> Vantage:
    for v in w.vantages:
        if v.name == name:
            return v
    raise ValueError(
        f"watch {w.name} has no vantage {name!r} (its vantages: {', '.join(v.name for v in w.vantages) or 'none'})"
    )


@flow(name=PROBE_FLOW, flow_run_name="probe-{vantage}", log_prints=True, persist_result=True, result_serializer="json")
async def probe_flow(
    watch: str | dict[str, Any], vantage: str, tick: datetime | None = None, rebuild_baseline: bool = False
) -> dict[str, Any]:
    """Measure from this vantage for one tick: web probes of every service, then a diffscan (if configured)."""
    logger = get_run_logger()
    w = _watch(watch)
    v = _vantage(w, vantage)
    if v.asn is None:  # observations are per vantage ASN: ask RIPEstat which network we are on
        try:
            asn, address = await vantage_asn(watch=w)
            v = v.model_copy(update={"asn": asn})
            logger.info("vantage %s is at %s in AS%s (RIPEstat)", v.name, address, asn)
        except Exception as exc:  # the probes still run; their observations carry no ASN
            logger.warning("vantage %s: ASN look-up failed (%s); set `asn` in the playbook", v.name, exc)
    tick = (tick or datetime.now(timezone.utc)).astimezone(timezone.utc)
    observations: list[dict[str, Any]] = []
    notices: list[Notice] = []
    jobs = []
    if enabled(w, wp.SOURCE, True) and w.services:
        jobs.append(webprobe_task(w, v, tick))
    if ds.SOURCE in w.sources and enabled(w, ds.SOURCE, False):
        jobs.append(diffscan_task(w, v, tick, rebuild_baseline))
    for done in await asyncio.gather(*jobs, return_exceptions=True):
        if isinstance(done, BaseException):
            logger.error("a probe failed on %s: %s", v.name, done)
            notices.append(
                Notice(
                    time=tick,
                    level=NoticeLevel.error,
                    source="vantage",
                    watch=w.name,
                    message=f"vantage {v.name}: a probe failed: {type(done).__name__}: {done}",
                )
            )
        elif isinstance(done, list):
            observations += [o.model_dump(mode="json") for o in done]
        else:
            observations += [o.model_dump(mode="json") for o in done.observations]
            if done.baseline_built:
                notices.append(
                    Notice(time=tick, level=NoticeLevel.info, source="diffscan", watch=w.name, message=done.message)
                )
    logger.info("vantage %s: %d observations", v.name, len(observations))
    return {
        "vantage": v.name,
        "tick": tick.isoformat(),
        "observations": observations,
        "notices": [n.model_dump(mode="json") for n in notices],
    }


REPO = Path(__file__).resolve().parent.parent


def deploy_vantages(
    watch: Watch, working_dir: str | Path | None = None, job_variables: dict[str, Any] | None = None
) -> list[str]:
    """Create or update the `vantage-probe/<vantage>` deployment of every vantage on its work pool.

    Process workers run the flow from a checkout of this repository at `working_dir` (default:
    this checkout's path, so vantage machines keep theirs at the same path or pass their own).
    """
    from prefect.deployments.runner import RunnerDeployment

    variables = {"working_dir": str(working_dir or REPO), **(job_variables or {})}
    ids = []
    for v in watch.vantages:
        dep = RunnerDeployment.from_flow(
            probe_flow,
            name=v.name,
            work_pool_name=v.work_pool,
            parameters={"watch": watch.name, "vantage": v.name},
            job_variables=variables,
            description=f"probes from vantage {v.name} (AS{v.asn or '?'}, {v.location or 'location unknown'})",
        )
        ids.append(str(dep.apply()))
    return ids


if __name__ == "__main__":
    import sys

    asyncio.run(probe_flow(sys.argv[1], sys.argv[2]))
