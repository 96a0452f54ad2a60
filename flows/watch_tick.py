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
from pollwatch.timeutil import floor_time
from tasks.attribute import attribute_task
from tasks.classify import classify_task
from tasks.collect import collect_file
from tasks.detect import detect_task
from tasks.notify import notify_task
from tasks.probe import probe_vantages, vantage_timeout
from tasks.record import load_observations, load_watch_state, record_observations, record_outcome, tick_already_done
from tasks.record_audit import AUDIT_HOOKS


@flow(name="watch-tick", flow_run_name="tick-{watch}-{tick}", log_prints=True, **AUDIT_HOOKS)
def watch_tick(watch: str, tick: datetime | None = None, observations: str | None = None) -> dict:
    """Run one tick of `watch` for scheduled time `tick` (default: now, rounded down to the cadence).

    `observations` optionally names a JSON Lines file to collect from (demos, tests, air-gapped use).
    """
    logger = get_run_logger()
    w = resolve_watch(watch)
    now = datetime.now(timezone.utc)
    phase = w.phase_at(tick or now)
    cadence = phase.cadence if phase else timedelta(minutes=5)
    tick = floor_time(tick or now, cadence) if tick is None else tick.astimezone(timezone.utc)
    if tick_already_done(w.name, tick):
        logger.info("tick %s of %s already completed; nothing to do", tick, w.name)
        return {"watch": w.name, "tick": tick.isoformat(), "skipped": True}

    state, last_tick, known = load_watch_state(w.name)
    lag = max((s.lag for s in w.signals.values()), default=timedelta(0))
    longest = max((s.window for s in w.signals.values()), default=timedelta(days=1))
    since = (last_tick - lag - cadence) if last_tick else tick - longest
    notices: list[Notice] = []

    if observations:
        collected = collect_file(observations, since, tick)
        record_observations(quote(collected), w.name)

    # --- own vantage points (docs/probes.md): the probe flow on every vantage's work pool ------
    probe_gaps: list[Gap] = []
    if w.vantages:
        probed = probe_vantages.submit(w, tick, vantage_timeout(w, cadence), cadence).result()
        record_observations(quote(probed.observations), w.name)
        probe_gaps, notices = probed.gaps, notices + probed.notices
    # --- end of own vantage points -----------------------------------------------------------

    visible = load_observations(w.country, since, tick + timedelta(seconds=1))

    # quote(): big inputs are passed as they are, not walked by Prefect looking for futures
    det = detect_task(w, quote(state.detector), [tick], quote(visible))
    cls = classify_task(w, quote(state.grouper), [tick], quote(det.events))
    anomalies = latest_anomalies(det.events)
    events = attribute_task(w, quote(cls.events), quote(known), quote(anomalies + list(cls.state.anomalies.values())))
    alerts = notify_task(w, quote(events))
    summary = {"observations": len(visible), "anomaly_events": len(det.events), "incident_events": len(events), "alerts": len(alerts)}
    record_outcome(
        w.name, quote(anomalies), quote([e.incident for e in events]), quote(det.gaps + probe_gaps), notices,
        state=quote(WatchState(detector=det.state, grouper=cls.state)), tick=tick, flow_run_id=current_flow_run_id(), summary=summary,
        anomaly_events=quote(det.events), incident_events=quote(events), watch_cfg=w,
    )
    logger.info("tick %s of %s: %s", tick, w.name, summary)
    return {"watch": w.name, "tick": tick.isoformat(), "skipped": False, **summary}


if __name__ == "__main__":
    import sys

    watch_tick(sys.argv[1] if len(sys.argv) > 1 else "kz-2019-presidential")
