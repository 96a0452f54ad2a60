"""baseline: the pre-election phase. Fetch each signal's history window, compute every series'
baseline with its coverage, persist them, and publish the baseline-health table artifact.

History comes from the watch's enabled sources, or from a JSON Lines file (air-gapped use,
demos, tests). Observations are recorded, so the first watch tick finds its history in the
store and the detectors warm up from it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from prefect import flow, get_run_logger
from prefect.utilities.annotations import quote

from pollwatch.flows.common import resolve_watch
from pollwatch.baseline import never_judged_notices
from pollwatch.models import iso
from pollwatch.sources import enabled_sources
from pollwatch.tasks.baseline import baseline_task
from pollwatch.tasks.collect import collect_file, collect_source
from pollwatch.tasks.record import record_observations, record_outcome
from pollwatch.tasks.record_audit import AUDIT_HOOKS


@flow(name="baseline", flow_run_name="baseline-{watch}", log_prints=True, **AUDIT_HOOKS)
def baseline(
    watch: str,
    window_end: datetime | None = None,
    observations: str | None = None,
    base_urls: dict[str, str] | None = None,
) -> dict:
    """Baseline `watch` over the windows ending at `window_end` (default: now, at most election day - 1 day).

    History comes from `observations` (a JSON Lines file) when given, else from every enabled source
    (one collect task each, side by side; `base_urls` may point some at mirrors or test servers)."""
    logger = get_run_logger()
    w = resolve_watch(watch)
    end = (window_end or min(datetime.now(timezone.utc), w.at_offset(timedelta(days=-1)))).astimezone(timezone.utc)
    longest = max((s.window for s in w.signals.values()), default=timedelta(days=7))
    start = end - longest
    gaps, notices = [], []
    if observations:
        obs = [o for o in collect_file(observations, start, end) if o.time < end]
    else:
        futures = [
            collect_source.submit(name, w, start, end, (base_urls or {}).get(name)) for name in enabled_sources(w)
        ]
        results = [f.result() for f in futures]
        obs = [o for r in results for o in r.observations]
        gaps = [g for r in results for g in r.gaps]
        notices = [n for r in results for n in r.notices]
    record_observations(quote(obs), w.name)
    baselines = baseline_task(w, quote(obs), end)
    unjudged = never_judged_notices(w, obs, end)
    for n in unjudged:
        logger.warning("%s", n.message)
    notices += unjudged
    if gaps or notices:
        record_outcome(w.name, [], [], quote(gaps), quote(notices))
    blind = [b for b in baselines if not b.usable]
    logger.info(
        "baselined %s for %s -> %s: %d series, %d usable, %d blind spots, %d gaps",
        w.name,
        iso(start),
        iso(end),
        len(baselines),
        len(baselines) - len(blind),
        len(blind),
        len(gaps),
    )
    return {
        "watch": w.name,
        "window_start": iso(start),
        "window_end": iso(end),
        "observations": len(obs),
        "series": len(baselines),
        "usable": len(baselines) - len(blind),
        "blind": [f"{b.signal} {b.entity}: {b.reason}" for b in blind],
        "gaps": len(gaps),
        "never_judged": [n.message for n in unjudged],
    }


if __name__ == "__main__":
    import sys

    baseline(sys.argv[1] if len(sys.argv) > 1 else "kz-2019-presidential")
