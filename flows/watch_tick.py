"""watch_tick: one polling tick of one watch (collect, record, detect, classify, attribute, notify).

Idempotent per (watch, scheduled time): a tick already completed returns at once and sends
nothing. The detectors' state is loaded from and saved to the store, so a tick costs O(new data).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from prefect import flow, get_run_logger
from prefect.utilities.annotations import quote

from flows.common import current_flow_run_id, resolve_watch
from pollwatch.models import Gap, Notice
from pollwatch.pipeline import WatchState, latest_anomalies
from pollwatch.sources import enabled_sources
from pollwatch.timeutil import floor_time
from tasks.attribute import attribute_task
from tasks.classify import classify_task
from tasks.collect import collect_file, collect_source, coverage_artifact
from tasks.detect import detect_task
from tasks.notify import notify_task
from tasks.probe import probe_vantages, vantage_timeout
from tasks.record import claim_tick, load_attribution_context, load_observations, load_watch_state, record_observations, record_outcome
from tasks.record_audit import AUDIT_HOOKS


@flow(name="watch-tick", flow_run_name="tick-{watch}-{tick}", log_prints=True, **AUDIT_HOOKS)
def watch_tick(watch: str, tick: datetime | None = None, observations: str | None = None, base_urls: dict[str, str] | None = None) -> dict:
    """Run one tick of `watch` for scheduled time `tick` (default: now, rounded down to the cadence).

    `observations` optionally names a JSON Lines file to collect from (demos, tests, air-gapped use);
    without it the tick collects from the observatories the playbook's `sources` enable, one task
    per source, and `base_urls` may point some of them at mirrors (or test servers).
    """
    logger = get_run_logger()
    w = resolve_watch(watch)
    now = datetime.now(timezone.utc)
    phase = w.phase_at(tick or now)
    cadence = phase.cadence if phase else timedelta(minutes=5)
    tick = floor_time(tick or now, cadence) if tick is None else tick.astimezone(timezone.utc)
    # claimed before any work, so a second run of the same tick started meanwhile skips instead of racing
    if not claim_tick(w.name, tick, current_flow_run_id()):
        logger.info("tick %s of %s already completed or running; nothing to do", tick, w.name)
        return {"watch": w.name, "tick": tick.isoformat(), "skipped": True}

    state, last_tick, known = load_watch_state(w.name)
    lag = max((s.lag for s in w.signals.values()), default=timedelta(0))
    longest = max((s.window for s in w.signals.values()), default=timedelta(days=1))
    since = (last_tick - lag - cadence) if last_tick else tick - longest
    notices: list[Notice] = []

    source_gaps: list[Gap] = []
    source_summary: dict[str, dict[str, int]] = {}
    if observations:
        collected = collect_file(observations, since, tick)
        record_observations(quote(collected), w.name)
    else:
        # one task run per enabled source, running side by side; a failing source only adds gaps and notices
        futures = [collect_source.submit(name, w, since, tick, (base_urls or {}).get(name)) for name in enabled_sources(w)]
        results = [f.result() for f in futures]
        collected = [o for r in results for o in r.observations]
        if collected:
            record_observations(quote(collected), w.name)
        for result in results:
            source_gaps += result.gaps
            notices += result.notices
            source_summary[result.source] = {"observations": len(result.observations), "gaps": len(result.gaps),
                                             "records": len(result.corroborations), "requests": result.requests}

    # --- own vantage points (docs/probes.md): the probe flow on every vantage's work pool ------
    probe_gaps: list[Gap] = []
    if w.vantages:
        probed = probe_vantages.submit(w, tick, vantage_timeout(w, cadence), cadence).result()
        record_observations(quote(probed.observations), w.name)
        probe_gaps, notices = probed.gaps, notices + probed.notices
    # --- end of own vantage points -----------------------------------------------------------

    visible = load_observations(w.country, since, tick + timedelta(seconds=1))
    if not observations:
        coverage_artifact(w, quote(visible), quote(source_gaps + probe_gaps))

    # quote(): big inputs are passed as they are, not walked by Prefect looking for futures
    det = detect_task(w, quote(state.detector), [tick], quote(visible))
    cls = classify_task(w, quote(state.grouper), [tick], quote(det.events))
    anomalies = latest_anomalies(det.events)
    context = load_attribution_context(w.name, w.country, tick - timedelta(days=8), tick + timedelta(seconds=1))
    # the incidents' anomalies: from earlier ticks (the old state) and this one's events
    members = list(state.grouper.anomalies.values()) + list(det.events)
    events = attribute_task(w, quote(cls.events), quote(known), quote(members), quote(context))
    alerts = notify_task(w, quote(events), notices=notices, anomalies=quote(anomalies), gaps=quote(det.gaps))
    summary = {"observations": len(visible), "anomaly_events": len(det.events), "incident_events": len(events), "alerts": len(alerts)}
    if source_summary:
        summary["sources"] = source_summary
    record_outcome(
        w.name, quote(anomalies), quote([e.incident for e in events]), quote(det.gaps + source_gaps + probe_gaps), notices,
        state=quote(WatchState(detector=det.state, grouper=cls.state)), tick=tick, flow_run_id=current_flow_run_id(), summary=summary,
        anomaly_events=quote(det.events), incident_events=quote(events), watch_cfg=w,
    )
    logger.info("tick %s of %s: %s", tick, w.name, summary)
    return {"watch": w.name, "tick": tick.isoformat(), "skipped": False, **summary}


if __name__ == "__main__":
    import sys

    watch_tick(sys.argv[1] if len(sys.argv) > 1 else "kz-2019-presidential")
