"""Record stage: everything a tick saw and decided goes to pollwatch's store, in one transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from pollwatch import audit, store
from pollwatch.attribute import AttributionContext, events_from_corroborations
from pollwatch.models import Anomaly, AnomalyEvent, Corroboration, Gap, Incident, IncidentEvent, Notice, Observation
from pollwatch.pipeline import WatchState
from pollwatch.playbook import Watch


@task(name="record-observations", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 2, 5])
def record_observations(
    observations: list[Observation], watch: str | None = None, records: list[Corroboration] | None = None
) -> int:
    """Upsert observations (idempotent on source, signal, entity, time) and the observatories' own outage
    records that came with them; one audit entry per source batch."""
    with store.session_scope() as s:
        n = store.upsert_observations(s, observations)
        store.save_corroborations(s, records or [])
        audit.record_observation_batches(s, watch=watch, observations=observations)
        return n


@task(name="load-observations", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 2, 5])
def load_observations(
    country: str, since: datetime, until: datetime, since_by_signal: dict[str, datetime] | None = None
) -> list[Observation]:
    """Observations of a country in [since, until) from the store (each signal from its own time when given)."""
    with store.session_scope() as s:
        return store.query_observations(s, country=country, since=since, until=until, since_by_signal=since_by_signal)


@task(name="load-watch-state", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 2, 5])
def load_watch_state(watch: str) -> tuple[WatchState, datetime | None, dict[str, Incident]]:
    """The watch's detector/grouper state, its last tick, and its open incidents as last recorded."""
    with store.session_scope() as s:
        data, last = store.load_watch_state(s, watch)
        state = WatchState.from_stored(data)
        known = {i: store.get_incident(s, i) for i in state.grouper.incidents}
        return state, last, {k: v for k, v in known.items() if v is not None}


@task(name="load-attribution-context", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 2, 5])
def load_attribution_context(
    watch: str, country: str, since: datetime, until: datetime, others_until: datetime | None = None
) -> AttributionContext:
    """Incidents attribution compares with: this country's earlier ones (recurrence), started in [since, until),
    and other countries' ones (affected at the same time), started in [since, others_until or until); and the
    observatories' cause labels recorded for the country then (Cloudflare Radar annotations)."""
    with store.session_scope() as s:
        incidents = store.list_incidents(s, since=since, until=max(until, others_until or until))
        records = store.list_corroborations(s, country, since, max(until, others_until or until))
    return attribution_context(incidents, records, country, since, until)


def attribution_context(
    incidents: list[Incident], records: list[Corroboration], country: str, since: datetime, until: datetime
) -> AttributionContext:
    """The context of one country from incidents started in [since, ...) anywhere and the country's records
    (a batch of watches loads the incidents once for all of them)."""
    past = [i for i in incidents if i.country == country and i.start < until and (i.end or i.start) >= since]
    others = [i for i in incidents if i.country != country and i.start >= since - timedelta(hours=1)]
    return AttributionContext(past=past, others=others, events=events_from_corroborations(records))


@task(name="load-incidents", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 2, 5])
def load_incidents(watch: str, since: datetime, until: datetime) -> dict[str, Incident]:
    """The watch's recorded incidents overlapping [since, until), by id (a replay keeps their overrides)."""
    with store.session_scope() as s:
        return {i.id: i for i in store.list_incidents(s, watch, since=since, until=until)}


@task(name="record-outcome", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 2, 5])
def record_outcome(
    watch: str,
    anomalies: list[Anomaly],
    incidents: list[Incident],
    gaps: list[Gap],
    notices: list[Notice],
    state: WatchState | None = None,
    tick: datetime | None = None,
    flow_run_id: str | None = None,
    summary: dict[str, Any] | None = None,
    anomaly_events: list[AnomalyEvent] | None = None,
    incident_events: list[IncidentEvent] | None = None,
    watch_cfg: Watch | None = None,
) -> None:
    """Save decisions, gaps, notices and (for live ticks) the watch state and the tick, atomically.

    Each anomaly and incident event also goes into the audit log, with the thresholds and rules
    of `watch_cfg` that produced it, in the same transaction.
    """
    with store.session_scope() as s:
        for aev in anomaly_events or []:
            audit.record_anomaly_event(s, event=aev, watch_cfg=watch_cfg)
        for iev in incident_events or []:
            audit.record_incident_event(s, event=iev, watch_cfg=watch_cfg)
        store.save_anomalies(s, anomalies)
        store.save_incidents(s, incidents)
        store.add_gaps(s, watch, gaps)
        store.add_notices(s, notices)
        if gaps or notices:
            audit.record_gaps(s, watch=watch, gaps=gaps, notices=notices)
        if state is not None and tick is not None:
            store.save_watch_state(s, watch, state.model_dump(mode="json"), tick)
            store.mark_tick_done(s, watch, tick, flow_run_id, summary or {})


@task(name="tick-done", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 2, 5])
def tick_already_done(watch: str, tick: datetime) -> bool:
    with store.session_scope() as s:
        return store.tick_done(s, watch, tick)


@task(name="claim-tick", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 2, 5])
def claim_tick(watch: str, tick: datetime, flow_run_id: str | None) -> bool:
    """Claim the tick for this run in its own transaction; False when it is done or running elsewhere."""
    with store.session_scope() as s:
        return store.claim_tick(s, watch, tick, flow_run_id)


def release_failed_tick(watch: str, tick: datetime, flow_run_id: str | None, notice: Notice) -> bool:
    """A tick failed: drop its claim (the same tick can run again) and record the operator notice, in one transaction.

    A plain function, not a task: it runs while the flow is failing, perhaps because the API is what failed.
    """
    with store.session_scope() as s:
        released = store.release_tick(s, watch, tick, flow_run_id)
        store.add_notices(s, [notice])
        audit.record_gaps(s, watch=watch, notices=[notice])
        return released


@task(name="record-tick", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 2, 5])
def record_tick(watch: str, tick: datetime, flow_run_id: str | None, summary: dict[str, Any]) -> None:
    """Mark a tick done without touching the watch's state (a late tick a later one covered)."""
    with store.session_scope() as s:
        store.mark_tick_done(s, watch, tick, flow_run_id, summary)
