"""Baseline stage: expected level, spread and coverage per series, persisted with a health artifact."""

from __future__ import annotations

from datetime import datetime

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from pollwatch import store
from pollwatch.baseline import compute_baselines
from pollwatch.models import Baseline, Observation
from pollwatch.playbook import Watch


@task(name="baseline", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def baseline_task(watch: Watch, observations: list[Observation], window_end: datetime) -> list[Baseline]:
    """Compute and store each series' baseline and publish a baseline-health table."""
    baselines = compute_baselines(watch, observations, window_end)
    with store.session_scope() as s:
        store.save_baselines(s, watch.name, baselines)
    rows = [
        {"entity": b.entity, "signal": b.signal, "points": b.points, "expected": None if b.expected is None else round(b.expected, 3),
         "spread": None if b.spread is None else round(b.spread, 3), "coverage": f"{b.coverage:.0%}",
         "usable": "yes" if b.usable else "no", "why": b.reason}
        for b in baselines
    ]
    create_table_artifact(key=f"baseline-health-{watch.name}", table=rows,
                          description=f"Baselines of {watch.name} for the window ending {window_end:%Y-%m-%d %H:%M} UTC")
    return baselines
