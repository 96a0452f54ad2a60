"""Baseline stage: expected level, spread and coverage per series, persisted with a health artifact."""

from __future__ import annotations

from datetime import datetime

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from pollwatch import store
from pollwatch.baseline import SHARE_SIGNALS, compute_baselines, health_rows, never_judged, with_address_shares
from pollwatch.models import Baseline, Observation
from pollwatch.playbook import Watch


@task(name="baseline", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def baseline_task(watch: Watch, observations: list[Observation], window_end: datetime) -> list[Baseline]:
    """Compute and store each series' baseline and publish a baseline-health table."""
    baselines = compute_baselines(watch, observations, window_end)
    with store.session_scope() as s:
        store.save_baselines(s, watch.name, baselines)
    usable = sum(b.usable for b in baselines)
    # series with data that detection will never judge (below min_prediction, shorter than warm_up, constant)
    unjudged = {
        (signal, entity): f"{setting}: {why}" for signal, entity, setting, why in never_judged(watch, observations)
    }
    rows = health_rows(baselines)
    for row in rows:
        row["never_judged"] = unjudged.get((row["signal"], row["entity"]), "")
    create_table_artifact(
        key=f"baseline-health-{watch.name}",
        table=rows,
        description=f"Baselines of {watch.name} for the window ending {window_end:%Y-%m-%d %H:%M} UTC: "
        f"{usable} of {len(baselines)} series usable"
        + (f"; {len(unjudged)} series with data never judged (see never_judged)" if unjudged else ""),
    )
    return baselines


@task(name="address-shares", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def address_shares_task(watch: Watch, history: list[Observation], window_end: datetime) -> Watch:
    """The watch with its providers' and regions' shares of the country's address space, from its stored baseline;
    a watch never baselined gets (and stores) the baseline of `history`'s /24 counts before `window_end`."""
    with store.session_scope() as s:
        stored = [b for b in store.list_baselines(s, watch.name) if b.signal in SHARE_SIGNALS]
        if not stored:
            stored = compute_baselines(
                watch, [o for o in history if o.signal in SHARE_SIGNALS and o.time < window_end], window_end
            )
            store.save_baselines(s, watch.name, stored)
        return with_address_shares(watch, stored)
