"""replay: a watch over a past time range, native step by native step, on a simulated clock.

The stages run as the same tasks a live tick uses, each batched over every tick of the range
(one task run per stage, not one per tick), so a replay gives the incidents live ticks would
have given. Everything is written to the replay store (pollwatch.store: never the live one, so a
live watch's report, audit, coverage and charts never see it); the alerts that would have been
sent are recorded with destination `replay` and printed, never delivered.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.utilities.annotations import quote
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from pollwatch.flows.common import resolve_watch
from pollwatch import progress, store
from pollwatch.words import KIND_TITLES, scope_line
from pollwatch.baseline import with_address_shares
from pollwatch.models import iso
from pollwatch.pipeline import judgement_times, latest_anomalies, latest_incidents, with_observed_signals
from pollwatch.tasks.attribute import attribute_task
from pollwatch.tasks.baseline import baseline_task
from pollwatch.tasks.classify import classify_task
from pollwatch.tasks.collect import collect_file
from pollwatch.tasks.detect import detect_task
from pollwatch.tasks.notify import notify_task
from pollwatch.tasks.record import load_attribution_context, load_incidents, record_observations, record_outcome
from pollwatch.tasks.record_audit import AUDIT_HOOKS


@flow(name="replay", flow_run_name="replay-{watch}", log_prints=True, **AUDIT_HOOKS)
def replay(
    watch: str,
    observations: str,
    start: datetime | None = None,
    end: datetime | None = None,
    incidents_json: str | None = None,
) -> dict:
    """Replay `watch` over [start, end) using a JSON Lines file, in the replay store;
    returns incident JSON and alert texts.
    """
    with store.using(store.REPLAY):
        return _replay(watch, observations, start, end, incidents_json)


def _replay(
    watch: str, observations: str, start: datetime | None, end: datetime | None, incidents_json: str | None
) -> dict:
    logger = get_run_logger()
    w = resolve_watch(watch)
    progress.step("reading the observations")
    obs = collect_file(observations)
    if not obs:
        raise ValueError(f"{observations}: no observations to replay")
    start = start or obs[0].time
    end = end or obs[-1].time
    progress.step(f"recording {len(obs):,} observations")
    # quote(): big inputs are passed as they are, not walked by Prefect looking for futures
    record_observations(quote(obs), w.name)
    progress.step("baselines")
    baselines = baseline_task(w, quote([o for o in obs if o.time < start]), start)
    w = with_address_shares(w, baselines)  # providers and regions weigh their address space
    ticks = judgement_times(w, start, end)  # every native step, as live ticks step through them
    logger.info(
        "replaying %s: %d ticks from %s to %s over %d observations", w.name, len(ticks), iso(start), iso(end), len(obs)
    )
    progress.step(f"detecting over {len(ticks):,} ticks")
    det = detect_task(w, None, ticks, quote(obs))
    progress.step("classifying")
    cls = classify_task(w, None, ticks, quote(det.events))
    anomalies = latest_anomalies(det.events)
    # earlier incidents of the country (recurrence) come from the store; those inside the range from the replay itself
    context = with_observed_signals(
        load_attribution_context(w.name, w.country, start - timedelta(days=8), start, end), obs
    )
    known = load_incidents(w.name, start, end)  # as recorded before, with any responder's override
    progress.step("attributing")
    events = attribute_task(w, quote(cls.events), quote(known), quote(det.events), quote(context))
    progress.step("alerts")
    alerts = notify_task(w, quote(events), replay=True)
    incidents = latest_incidents(events)
    progress.step("recording the outcome")
    record_outcome(
        w.name,
        quote(anomalies),
        quote(incidents),
        quote(det.gaps),
        [],
        anomaly_events=quote(det.events),
        incident_events=quote(events),
        watch_cfg=w,
    )
    public = [i.to_public() for i in incidents]
    if incidents_json:
        Path(incidents_json).parent.mkdir(parents=True, exist_ok=True)
        Path(incidents_json).write_text(json.dumps(public, indent=2))
    create_table_artifact(
        key=f"replay-incidents-{w.name}",
        table=[
            {
                "id": i.id,
                "kind": i.kind.value,
                "scope": scope_line(i),
                "start": iso(i.start),
                "end": iso(i.end),
                "detected_at": iso(i.detected_at),
                "cause": i.cause.value,
                "severity": f"{i.severity_index}/100 {i.severity_band}",
            }
            for i in incidents
        ],
        description=f"Incidents found replaying {w.name} from {iso(start)} to {iso(end)}",
    )
    lines = [
        f"# Replay of {w.name}",
        "",
        f"{len(ticks)} ticks, {len(obs)} observations, {len(incidents)} incidents, {len(alerts)} alerts.",
        "",
    ]
    lines += [
        f"- **{KIND_TITLES[i.kind]}** {iso(i.start)} → {iso(i.end) or 'ongoing'}: {scope_line(i)}" for i in incidents
    ]
    create_markdown_artifact(key=f"replay-summary-{w.name}", markdown="\n".join(lines))
    return {
        "incidents": public,
        "alerts": [a.text for a in alerts],
        "ticks": len(ticks),
        "range": [iso(start), iso(end)],
        "data": [iso(obs[0].time), iso(obs[-1].time)],
    }


if __name__ == "__main__":
    import sys

    replay(sys.argv[1], sys.argv[2])
