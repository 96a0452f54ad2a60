"""The analysis stages composed without an orchestrator, and the state a watch keeps between ticks.

`flows/` compose the same core functions as Prefect tasks; `analyse()` composes them directly,
for benchmarks (orchestration overhead) and for tests that compare both paths.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from pollwatch.alerts import build_alerts
from pollwatch.attribute import AttributionContext, attribute
from pollwatch.classify import GroupState, classify
from pollwatch.detect import DetectorState, detect
from pollwatch.models import Alert, Anomaly, AnomalyEvent, Gap, Incident, IncidentEvent, Observation
from pollwatch.playbook import Watch
from pollwatch.timeutil import tick_grid


class WatchState(BaseModel):
    """Everything a watch remembers between ticks (persisted in the store's watch_state table)."""

    detector: DetectorState = Field(default_factory=DetectorState)
    grouper: GroupState = Field(default_factory=GroupState)
    playbook_hash: str | None = None  # the playbook the last tick ran with (a change mid-election is noticed)

    @classmethod
    def from_stored(cls, data: dict[str, Any] | None) -> "WatchState":
        return cls.model_validate(data) if data else cls()


class Outcome(BaseModel):
    state: WatchState
    anomalies: list[Anomaly] = Field(default_factory=list)  # every anomaly touched, newest version
    events: list[IncidentEvent] = Field(default_factory=list)
    incidents: list[Incident] = Field(default_factory=list)  # newest version of each incident touched
    alerts: list[Alert] = Field(default_factory=list)
    gaps: list[Gap] = Field(default_factory=list)
    # the detectors' decisions (the audit log records each)
    anomaly_events: list[AnomalyEvent] = Field(default_factory=list)


def latest_anomalies(events: Sequence[Any]) -> list[Anomaly]:
    """The newest version of each anomaly in a sequence of AnomalyEvents."""
    latest: dict[str, Anomaly] = {}
    for ev in events:
        latest[ev.anomaly.id] = ev.anomaly
    return list(latest.values())


def latest_incidents(events: Sequence[IncidentEvent]) -> list[Incident]:
    latest: dict[str, Incident] = {}
    for ev in events:
        latest[ev.incident.id] = ev.incident
    return list(latest.values())


class TickWindows(BaseModel):
    """From when a tick collects and loads each signal: its last tick less that signal's lag and one cadence, so
    data that arrived late (and ticks that were missed) are caught up; on a first tick, the longest window."""

    since: dict[str, datetime]

    @classmethod
    def of(cls, watch: Watch, last_tick: datetime | None, tick: datetime, cadence: timedelta) -> TickWindows:
        if last_tick is None:
            longest = max((c.window for c in watch.signals.values()), default=timedelta(days=1))
            return cls(since={sig: tick - longest for sig in watch.signals})
        return cls(since={sig: last_tick - c.lag - cadence for sig, c in watch.signals.items()})

    @property
    def earliest(self) -> datetime:
        return min(self.since.values())

    def for_source(self, source: str, watch: Watch) -> datetime:
        """The earliest start over the signals the playbook takes from `source` (all signals' when it has none)."""
        own = [self.since[sig] for sig, c in watch.signals.items() if c.source == source and sig in self.since]
        return min(own, default=self.earliest)

    def keep(self, o: Observation) -> bool:
        """Whether a collected observation is inside its signal's window (signals the playbook lacks: the earliest)."""
        return o.time >= self.since.get(o.signal, self.earliest)


def judgement_step(watch: Watch) -> timedelta:
    """The step detection and classification advance by: the finest native step of the watch's signals."""
    return min((c.step for c in watch.signals.values() if c.step > timedelta(0)), default=timedelta(minutes=5))


def judgement_times(watch: Watch, start: datetime, end: datetime) -> list[datetime]:
    """The moments a replay of [start, end) judges: every native step (`judgement_step`), whatever the cadence."""
    return [t for t in tick_grid(start, end, judgement_step(watch)) if t < end]


def tick_judgements(watch: Watch, last_tick: datetime | None, tick: datetime, since: datetime) -> list[datetime]:
    """The moments a tick judges: each native step after the last completed tick (on a first tick, after `since`,
    the start of its window) up to the tick, then the tick. A tick after missed ones steps through the steps they
    would have judged, as a replay does, instead of judging hours of data as one moment (which merged separate
    events and kept ended ones open)."""
    after = last_tick if last_tick is not None else since - timedelta(microseconds=1)
    steps = [t for t in judgement_times(watch, after, tick) if t > after]
    return steps + [tick]


def with_observed_signals(
    context: AttributionContext | None, observations: Sequence[Observation]
) -> AttributionContext:
    """The attribution context, told which signals had data among `observations` (a silent signal is no evidence)."""
    seen = {o.signal for o in observations if o.value is not None}
    ctx = context or AttributionContext()
    return ctx.model_copy(update={"observed_signals": seen | (ctx.observed_signals or set())})


def analyse(
    watch: Watch,
    state: WatchState | None,
    ticks: Sequence[datetime],
    observations: Sequence[Observation],
    known: dict[str, Incident] | None = None,
    context: AttributionContext | None = None,
) -> Outcome:
    """Detect, classify, attribute and build alerts for `ticks`, with no Prefect involved."""
    state = state or WatchState()
    det = detect(watch, state.detector, ticks, observations)
    anomalies = latest_anomalies(det.events)
    cls = classify(watch, state.grouper, ticks, det.events)
    # each incident event is attributed with its anomalies as they were at its tick
    context = with_observed_signals(context, observations)
    events = attribute(watch, cls.events, known, list(state.grouper.anomalies.values()) + list(det.events), context)
    return Outcome(
        state=WatchState(detector=det.state, grouper=cls.state),
        anomalies=anomalies,
        events=events,
        incidents=latest_incidents(events),
        alerts=build_alerts(watch, events),
        gaps=det.gaps,
        anomaly_events=det.events,
    )


def run_ticks(
    watch: Watch, observations: Sequence[Observation], schedule: Sequence[datetime], cadence: timedelta | None = None
) -> list[IncidentEvent]:
    """Live ticks at the times of `schedule`, in its order, as `watch_tick` runs them (no Prefect, no store):
    a tick at or before the last completed one is skipped, each tick sees its signals' windows up to its time
    and the state the previous tick left (through JSON, as the store keeps it). For benchmarks and tests that
    compare tick schedules with a replay. Returns every incident event, in order."""
    obs = sorted(observations, key=lambda o: o.time)
    times = [o.time for o in obs]
    state, known, last, events = WatchState(), {}, None, []
    for tick in schedule:
        if last is not None and tick <= last:
            continue  # the same tick twice (claimed) or a late one a later tick covered
        phase = watch.phase_at(tick)
        windows = TickWindows.of(watch, last, tick, cadence or (phase.cadence if phase else timedelta(minutes=5)))
        lo = bisect.bisect_left(times, windows.earliest)
        visible = [o for o in obs[lo : bisect.bisect_right(times, tick)] if windows.keep(o)]
        out = analyse(watch, state, tick_judgements(watch, last, tick, windows.earliest), visible, known)
        state = WatchState.model_validate(out.state.model_dump(mode="json"))
        known.update({i.id: i for i in out.incidents})
        events += out.events
        last = tick
    return events
