"""Collect stage: observations for a time range, one task run per source per tick."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from pollwatch.jsonl import read_observations
from pollwatch.models import Gap, Observation
from pollwatch.pipeline import TickWindows
from pollwatch.playbook import Watch
from pollwatch.settings import get_settings
from pollwatch.sources import CollectResult, make_source
from pollwatch.sources.coverage import CoverageRow, blind_spots, coverage_report
from pollwatch.tasks.secrets import secret_block


@task(name="collect-file", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def collect_file(
    path: str, since: datetime | None = None, until: datetime | None = None, windows: TickWindows | None = None
) -> list[Observation]:
    """Read observations in [since, until] from a JSON Lines file (replays, demos, imports); with a tick's
    `windows`, each signal from its own start instead of `since`."""
    out = read_observations(path)
    return [
        o
        for o in out
        if (until is None or o.time <= until) and (windows.keep(o) if windows else since is None or o.time >= since)
    ]


def _run_async(coro):  # type: ignore[no-untyped-def]
    """Run a coroutine from sync code, also when the calling thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def radar_token() -> SecretStr | None:
    """The Cloudflare Radar token: the Prefect Secret block
    `pollwatch-radar-api-token`, else POLLWATCH_RADAR_API_TOKEN.
    """
    return secret_block("pollwatch-radar-api-token") or get_settings().radar_api_token


@task(name="collect-source", task_run_name="collect-{source}-{until:%Y%m%dT%H%M}", cache_policy=NO_CACHE)
def collect_source(
    source: str,
    watch: Watch,
    since: datetime,
    until: datetime,
    base_url: str | None = None,
    deadline: datetime | None = None,
) -> CollectResult:
    """Collect [since, until) from one observatory, giving up at `deadline`; its failures (and what the deadline cut
    short) come back as gaps and notices, not exceptions."""
    kwargs: dict[str, Any] = {"token": radar_token()} if source == "radar" else {}
    src = make_source(source, watch, base_url=base_url, **kwargs)
    result = _run_async(src.collect(watch, since, until, deadline))
    logger = get_run_logger()
    logger.info(
        "%s: %d observation(s), %d gap(s), %d outage record(s), %d request(s) in %.2f s",
        source,
        len(result.observations),
        len(result.gaps),
        len(result.corroborations),
        result.requests,
        result.seconds,
    )
    for notice in result.notices:
        (logger.warning if notice.level != "info" else logger.info)("%s", notice.message)
    return result


def _batch_key(source: str, watch: Watch) -> str:
    """Watches whose settings for `source` agree (region codes aside: each watch's own are used) share a client."""
    cfg = watch.sources.get(source)
    if cfg is None:
        return ""
    options = {k: v for k, v in cfg.options.items() if k != "region_codes"}
    return cfg.model_copy(update={"options": options}).model_dump_json()


@task(
    name="collect-sources-batch",
    task_run_name="collect-{source}-{deadline:%Y%m%dT%H%M%S}",
    cache_policy=NO_CACHE,
)
def collect_sources_batch(
    source: str,
    jobs: list[tuple[Watch, datetime, datetime]],
    base_url: str | None = None,
    deadline: datetime | None = None,
) -> list[CollectResult]:
    """Collect [since, until) of each (watch, since, until) from one observatory in shared requests
    (`Source.collect_many`), one result per job; watches with different settings for the source are asked
    apart. Failures come back as each watch's gaps and notices, never as exceptions."""
    kwargs: dict[str, Any] = {"token": radar_token()} if source == "radar" else {}
    groups: dict[str, list[int]] = {}
    for i, (w, _, _) in enumerate(jobs):
        groups.setdefault(_batch_key(source, w), []).append(i)

    async def run_all() -> list[list[CollectResult]]:
        sources = [make_source(source, jobs[idx[0]][0], base_url=base_url, **kwargs) for idx in groups.values()]
        return await asyncio.gather(
            *(src.collect_many([jobs[i] for i in idx], deadline) for src, idx in zip(sources, groups.values()))
        )

    out: list[CollectResult | None] = [None] * len(jobs)
    for idx, results in zip(groups.values(), _run_async(run_all())):
        for i, r in zip(idx, results):
            out[i] = r
    done = [r for r in out if r is not None]
    get_run_logger().info(
        "%s for %d watch(es): %d observation(s), %d gap(s), %d outage record(s)",
        source,
        len(done),
        sum(len(r.observations) for r in done),
        sum(len(r.gaps) for r in done),
        sum(len(r.corroborations) for r in done),
    )
    return done


@task(name="coverage-report", cache_policy=NO_CACHE)
def coverage_artifact(watch: Watch, observations: list[Observation], gaps: list[Gap]) -> list[CoverageRow]:
    """Publish which regions, providers and services have data from which source (a table artifact)."""
    rows = coverage_report(watch, observations, gaps)
    spots = blind_spots(rows)
    create_table_artifact(
        key=re.sub(r"[^a-z0-9-]+", "-", f"coverage-{watch.name}".lower()),  # artifact keys allow a-z, 0-9 and dashes
        table=[r.table_row() for r in rows],
        description=f"Coverage of {watch.name}: {len(spots)} blind spot(s)" + ("".join(f"\n- {s}" for s in spots[:20])),
    )
    return rows
