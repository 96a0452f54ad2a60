"""Collect stage: observations for a time range, one task run per source per tick."""

from __future__ import annotations

from datetime import datetime

from prefect import task
from prefect.cache_policies import NO_CACHE

from pollwatch.jsonl import read_observations
from pollwatch.models import Observation


@task(name="collect-file", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def collect_file(path: str, since: datetime | None = None, until: datetime | None = None) -> list[Observation]:
    """Read observations in [since, until] from a JSON Lines file (replays, demos, imports)."""
    out = read_observations(path)
    return [o for o in out if (since is None or o.time >= since) and (until is None or o.time <= until)]
