"""watch_tick: one polling tick of one watch (collect, record, detect, classify, attribute, notify).

Idempotent per (watch, scheduled time): a tick already completed returns at once and sends
nothing; a tick that fails releases its claim (so the same tick can run again), tells the
operators (ops channel or console) and ends its flow run Failed; a late tick older than the
last completed one is recorded as covered by it. A tick
collects from the last completed tick on, so one that follows missed ticks catches up on their
data and judges it native step by native step (`tick_judgements`), so whatever the schedule it finds the
incidents a replay finds; the outbox's idempotency keys keep alerts from being sent twice. The detectors'
state is loaded from and saved to the store, so a tick costs O(new data).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from prefect import flow, get_run_logger
from prefect.concurrency.sync import concurrency
from prefect.exceptions import TerminationSignal
from prefect.utilities.annotations import quote

from pollwatch.flows.common import current_flow_run_id, resolve_watch, scheduled_time
from pollwatch.baseline import never_judged_notices
from pollwatch.models import Gap, Notice, NoticeLevel, iso
from pollwatch.pipeline import TickWindows, WatchState, latest_anomalies, tick_judgements, with_observed_signals
from pollwatch.playbook import Watch
from pollwatch.schedule import concurrency_limit_name
from pollwatch.sources import CollectResult, enabled_sources, interrupt_collections
from pollwatch.timeutil import floor_time, parse_time
from pollwatch.tasks.attribute import attribute_task
from pollwatch.tasks.classify import classify_task
from pollwatch.tasks.collect import collect_file, collect_source, coverage_artifact
from pollwatch.tasks.detect import detect_task
from pollwatch.tasks.notify import notify_task
from pollwatch.tasks.probe import probe_vantages, vantage_timeout
from pollwatch.tasks.record import (
    claim_tick,
    load_attribution_context,
    load_observations,
    load_watch_state,
    record_observations,
    record_outcome,
    record_tick,
    release_failed_tick,
)
from pollwatch.tasks.record_audit import AUDIT_HOOKS


@flow(name="watch-tick", flow_run_name="tick-{watch}-{tick}", log_prints=True, **AUDIT_HOOKS)
def watch_tick(
    watch: str, tick: datetime | None = None, observations: str | None = None, base_urls: dict[str, str] | None = None
) -> dict:
    """Run one tick of `watch` for scheduled time `tick`.

    Without `tick`, a run created by a deployment's schedule processes its own scheduled time
    (so a late run still covers its tick), and any other run takes now; both rounded down to the
    phase's cadence. `observations` optionally names a JSON Lines file to collect from (demos,
    tests, air-gapped use); without it the tick collects from the observatories the playbook's
    `sources` enable, one task per source, and `base_urls` may point some of them at mirrors (or
    test servers). Ticks of one watch never overlap: each run of a deployment holds the watch's
    global concurrency limit (one slot, created by `pollwatch schedule` and `serve`).
    """
    w = resolve_watch(watch)
    scheduled = scheduled_time()
    if tick is None:
        when = scheduled or datetime.now(timezone.utc)
        phase = w.phase_at(when)
        tick = floor_time(when, phase.cadence if phase else timedelta(minutes=5))
    tick = parse_time(tick)  # a Prefect DateTime parameter would make naive times of every sum with a timedelta
    try:
        if scheduled is None:  # not a deployment's run (a manual tick, a test): no limit to hold
            return _run_tick(w, tick, observations, base_urls)
        with concurrency(concurrency_limit_name(w.name), occupy=1, strict=False):
            return _run_tick(w, tick, observations, base_urls)
    except BaseException as exc:  # the run ends Failed (or Crashed/Cancelled): say so, and let the tick run again
        # SIGTERM (Prefect raises TerminationSignal here), a cancelled run, a failure: first stop the collects still
        # waiting on servers, or the task runner would wait for them (up to the tick's deadline) before the run ends
        interrupt_collections(
            "SIGTERM" if isinstance(exc, TerminationSignal) else f"the tick's failure ({type(exc).__name__})"
        )
        _tick_failed(w, tick, exc)
        raise


def _tick_failed(w: Watch, tick: datetime, exc: BaseException) -> None:
    """Release the failed tick's claim and tell the operators (ops channel, or the console), best effort."""
    logger = get_run_logger()
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:400]
    notice = Notice(
        time=tick,
        level=NoticeLevel.error,
        source="watch-tick",
        watch=w.name,
        message=f"tick {iso(tick)} of {w.name} failed ({reason}); its decisions were not saved. The tick is "
        f"released: rerun it with `pollwatch tick {w.name} --at {iso(tick)}` (an alert already sent is not "
        "sent again; the next tick also catches up on its data)",
    )
    try:
        release_failed_tick(w.name, tick, current_flow_run_id(), notice)
    except Exception as inner:  # the store itself may be what failed: the claim then goes stale after 15 minutes
        logger.error("tick %s of %s failed and its claim could not be released: %s", tick, w.name, inner)
    try:
        notify_task.fn(w, [], notices=[notice])
    except Exception as inner:
        logger.error("tick %s of %s failed and the operators could not be told: %s", tick, w.name, inner)
    logger.error(notice.message)


def _run_tick(w: Watch, tick: datetime, observations: str | None, base_urls: dict[str, str] | None) -> dict:
    logger = get_run_logger()
    phase = w.phase_at(tick)
    cadence = phase.cadence if phase else timedelta(minutes=5)
    # claimed before any work, so a second run of the same tick started meanwhile skips instead of racing
    if not claim_tick(w.name, tick, current_flow_run_id()):
        logger.info("tick %s of %s already completed or running; nothing to do", tick, w.name)
        return {"watch": w.name, "tick": tick.isoformat(), "skipped": True}

    state, last_tick, known = load_watch_state(w.name)
    if last_tick is not None and tick < last_tick:
        # a late run whose data a later tick already judged: record it as covered, send nothing
        record_tick(w.name, tick, current_flow_run_id(), {"covered_by": last_tick.isoformat()})
        logger.info("tick %s of %s was covered by the later tick %s", tick, w.name, last_tick)
        return {"watch": w.name, "tick": tick.isoformat(), "skipped": True, "covered_by": last_tick.isoformat()}
    windows, deadline, notices = plan_tick(w, tick, cadence, state, last_tick)
    since = windows.earliest

    cfg = quote(w)  # the watch as it is: Prefect need not walk its providers and regions for every task
    source_gaps: list[Gap] = []
    source_summary: dict[str, dict[str, int]] = {}
    if observations:
        collected = collect_file(observations, since, tick, windows)
        record_observations(quote(collected), w.name)
    else:
        # one task run per enabled source, running side by side; a failing source only adds gaps and notices
        futures = [
            collect_source.submit(name, cfg, windows.for_source(name, w), tick, (base_urls or {}).get(name), deadline)
            for name in enabled_sources(w)
        ]
        results = [f.result() for f in futures]
        collected = [o for r in results for o in r.observations]
        # IODA alerts/events, Radar annotations: for attribution
        records = [c for r in results for c in r.corroborations]
        if collected or records:
            record_observations(quote(collected), w.name, quote(records))
        source_gaps, source_notices, source_summary = collected_summary(results)
        notices += source_notices

    # --- own vantage points (docs/probes.md): the probe flow on every vantage's work pool ------
    probe_gaps: list[Gap] = []
    if w.vantages:
        left = max(5.0, (deadline - datetime.now(timezone.utc)).total_seconds())
        probed = probe_vantages.submit(cfg, tick, min(vantage_timeout(w, cadence), left), cadence).result()
        record_observations(quote(probed.observations), w.name)
        probe_gaps, notices = probed.gaps, notices + probed.notices
    # --- end of own vantage points -----------------------------------------------------------

    visible = load_observations(w.country, since, tick + timedelta(seconds=1), windows.since)
    if last_tick is None:  # the first tick says which series it has data for but will never judge, and why
        notices += never_judged_notices(w, visible, tick, source="watch-tick")
    if not observations:
        coverage_artifact(cfg, quote(visible), quote(source_gaps + probe_gaps))

    # quote(): big inputs are passed as they are, not walked by Prefect looking for futures
    # the native steps since the last tick, one by one (as a replay judges them), then the tick
    steps = tick_judgements(w, last_tick, tick, since)
    det = detect_task(cfg, quote(state.detector), quote(steps), quote(visible))
    cls = classify_task(cfg, quote(state.grouper), quote(steps), quote(det.events))
    anomalies = latest_anomalies(det.events)
    context = with_observed_signals(
        load_attribution_context(w.name, w.country, tick - timedelta(days=8), tick + timedelta(seconds=1)), visible
    )
    # the incidents' anomalies: from earlier ticks (the old state) and this one's events
    members = list(state.grouper.anomalies.values()) + list(det.events)
    events = attribute_task(cfg, quote(cls.events), quote(known), quote(members), quote(context))
    alerts = notify_task(cfg, quote(events), notices=quote(notices), anomalies=quote(anomalies), gaps=quote(det.gaps))
    summary = tick_summary(w, visible, det.events, events, alerts, since, source_summary)
    record_outcome(
        w.name,
        quote(anomalies),
        quote([e.incident for e in events]),
        quote(det.gaps + source_gaps + probe_gaps),
        notices,
        state=quote(WatchState(detector=det.state, grouper=cls.state, playbook_hash=w.content_hash)),
        tick=tick,
        flow_run_id=current_flow_run_id(),
        summary=summary,
        anomaly_events=quote(det.events),
        incident_events=quote(events),
        watch_cfg=cfg,
    )
    logger.info("tick %s of %s: %s", tick, w.name, summary)
    return {"watch": w.name, "tick": tick.isoformat(), "skipped": False, **summary}


def plan_tick(
    w: Watch, tick: datetime, cadence: timedelta, state: WatchState, last_tick: datetime | None
) -> tuple[TickWindows, datetime, list[Notice]]:
    """What a tick asks for and until when: each signal's window (from the last completed tick less its lag, so
    missed ticks and late data are caught up), the deadline for what waits on the outside world (what is
    unanswered by then is a gap), and a notice when the playbook changed since the last tick."""
    windows = TickWindows.of(w, last_tick, tick, cadence)
    deadline = datetime.now(timezone.utc) + w.tick.for_cadence(cadence)
    notices: list[Notice] = []
    if state.playbook_hash and w.content_hash and state.playbook_hash != w.content_hash:
        notices.append(
            Notice(
                time=tick,
                level=NoticeLevel.warning,
                source="watch-tick",
                watch=w.name,
                message=f"playbook of {w.name} changed since the last tick (sha256 {state.playbook_hash[:12]} -> "
                f"{w.content_hash[:12]})",
            )
        )
    return windows, deadline, notices


def collected_summary(results: list[CollectResult]) -> tuple[list[Gap], list[Notice], dict[str, dict[str, int]]]:
    """The sources' gaps and notices, and per source what it brought (the tick's summary)."""
    gaps: list[Gap] = []
    notices: list[Notice] = []
    summary: dict[str, dict[str, int]] = {}
    for result in results:
        gaps += result.gaps
        notices += result.notices
        summary[result.source] = {
            "observations": len(result.observations),
            "gaps": len(result.gaps),
            "records": len(result.corroborations),
            "requests": result.requests,
        }
    return gaps, notices, summary


def tick_summary(
    w: Watch,
    visible: list[Any],
    anomaly_events: list[Any],
    incident_events: list[Any],
    alerts: list[Any],
    since: datetime,
    sources: dict[str, dict[str, int]],
) -> dict[str, Any]:
    """The figures a completed tick records with its row (and its run's result)."""
    summary: dict[str, Any] = {
        "observations": len(visible),
        "anomaly_events": len(anomaly_events),
        "incident_events": len(incident_events),
        "alerts": len(alerts),
        "since": since.isoformat(),
        "playbook_hash": w.content_hash,
    }
    if sources:
        summary["sources"] = sources
    return summary


if __name__ == "__main__":
    import sys

    watch_tick(sys.argv[1] if len(sys.argv) > 1 else "kz-2019-presidential")
