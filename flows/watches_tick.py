"""watches_tick: the due ticks of many watches in one flow run, one task per stage over all of them.

A run covers one batch slot [T, T + every) (its deployment's scheduled time, else now, rounded down to
`every`): every watch whose phase has a tick in the slot is due, each at its own tick (a 5-minute watch
in a 1-minute batch every fifth slot). The run claims the due ticks (pollwatch.tick_claims: the same
per-(watch, tick) claim a single tick takes, on a lease the run renews while it works), then runs the
stages of `flows/watch_tick.py` once for all of them: load the states, collect (one task per source, the
watches' requests shared: `Source.collect_many`), record, load, detect, classify, attribute, notify,
record the outcome. Each watch keeps its own tick, claim, state, incidents, alerts and audit entries;
a watch whose stage fails is that watch's failure only (its claim released, the operators told, as a
single tick does), and missing data is a gap and a notice, never an alert.

Several runs of one slot (lanes: `lane` of `lanes`, e.g. one deployment per lane on one work pool
served by several workers) split the due watches between them: each claims `chunk` watches at a time,
starting at its own offset, until none is left, so a watch is ticked by exactly one of them; a run that
dies leaves claims that lapse, and the watch's next tick catches up on the data and records the lapsed
tick as covered by it (docs/deploy.md).

The run record per watch: the tick's row (its flow run id, its summary), run start and end entries in
the audit log under the watch's name, and one Prefect table artifact per watch (`tick-<watch>`: one
version per tick, linked to this flow run), not a sub-run or task run per watch, which would bring back
the fixed cost per run that batching removes (docs/deploy.md).
"""

from __future__ import annotations

import contextvars
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from pollwatch.flows.common import current_flow_run_id, resolve_watch, scheduled_time
from pollwatch.flows.watch_tick import _tick_failed, collected_summary, plan_tick, tick_summary
from pollwatch import audit, store, tick_claims
from pollwatch.baseline import never_judged_notices
from pollwatch.models import Notice, iso
from pollwatch.pipeline import TickWindows, WatchState, latest_anomalies, tick_judgements, with_observed_signals
from pollwatch.playbook import Watch
from pollwatch.schedule import due_ticks
from pollwatch.timeutil import floor_time, parse_time, utc_now
from pollwatch.sources import CollectResult, enabled_sources, interrupt_collections
from pollwatch.tasks.attribute import attribute_task
from pollwatch.tasks.classify import classify_task
from pollwatch.tasks.collect import collect_sources_batch
from pollwatch.tasks.detect import detect_task
from pollwatch.tasks.notify import notify_task
from pollwatch.tasks.record import (
    attribution_context,
    load_observations,
    load_watch_state,
    record_observations,
    record_outcome,
    record_tick,
)
from pollwatch.tasks.record_audit import AUDIT_HOOKS

FLOW = "watches-tick"
NOTIFY_THREADS = 8  # watches delivering alerts at once (each to channels of its own)


@dataclass
class WatchTick:
    """One watch's tick as it goes through a batch's stages."""

    w: Watch
    tick: datetime
    cadence: timedelta
    state: WatchState = field(default_factory=WatchState)
    last_tick: datetime | None = None
    known: dict[str, Any] = field(default_factory=dict)
    windows: TickWindows | None = None
    deadline: datetime | None = None
    notices: list[Notice] = field(default_factory=list)
    results: list[CollectResult] = field(default_factory=list)
    visible: list[Any] = field(default_factory=list)
    steps: list[datetime] = field(default_factory=list)
    det: Any = None
    cls: Any = None
    events: list[Any] = field(default_factory=list)
    alerts: list[Any] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    covered_by: datetime | None = None
    failed: BaseException | None = None

    @property
    def active(self) -> bool:
        return self.failed is None and self.covered_by is None

    @property
    def since(self) -> datetime:
        assert self.windows is not None
        return self.windows.earliest


def watch_files(watches: list[str] | str) -> list[str]:
    """Watch paths or names; a directory stands for the watch files in it."""
    out: list[str] = []
    for item in [watches] if isinstance(watches, str) else watches:
        path = Path(item)
        out += sorted(str(p) for p in path.glob("*.yaml")) if path.is_dir() else [item]
    return out


def _each(stage: str, ticks: list[WatchTick], work: Any) -> None:
    """Run `work(t)` for each active watch tick; what raises is that watch's failure, not the stage's."""
    logger = get_run_logger()
    for t in ticks:
        if not t.active:
            continue
        try:
            work(t)
        except Exception as exc:
            t.failed = exc
            logger.warning("%s of %s at %s failed: %s: %s", stage, t.w.name, iso(t.tick), type(exc).__name__, exc)


@task(name="claim-ticks", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 2, 5])
def claim_ticks_task(
    items: list[tuple[str, datetime]],
    holder: str,
    limit: int | None,
    hashes: dict[str, str | None],
    lease: timedelta = tick_claims.LEASE,
) -> tuple[list[tuple[str, datetime]], list[tuple[str, datetime]], list[tuple[str, datetime]]]:
    """Claim up to `limit` due ticks for this run (and start each one's run record in the audit log)."""
    with store.session_scope() as s:
        claimed, busy, rest = tick_claims.claim_ticks(s, items, holder, lease=lease, limit=limit)
        for name, tick in claimed:
            audit.record_run_start(
                s,
                watch=name,
                flow_run_id=holder,
                flow=FLOW,
                deployment=None,
                parameters={"watch": name, "tick": iso(tick), "batch": True},
                playbook_hash=hashes.get(name),
            )
    return claimed, busy, rest


@task(name="load-watch-states", cache_policy=NO_CACHE)
def load_states_task(ticks: list[WatchTick], holder: str) -> None:
    """Each watch's state and last tick; a tick older than the last completed one is recorded as covered."""

    def load(t: WatchTick) -> None:
        t.state, t.last_tick, t.known = load_watch_state.fn(t.w.name)
        if t.last_tick is not None and t.tick < t.last_tick:  # a later tick already judged its data
            record_tick.fn(t.w.name, t.tick, holder, {"covered_by": t.last_tick.isoformat()})
            t.covered_by = t.last_tick
            return
        t.windows, t.deadline, t.notices = plan_tick(t.w, t.tick, t.cadence, t.state, t.last_tick)

    _each("load-watch-state", ticks, load)


@task(name="record-observations-batch", cache_policy=NO_CACHE)
def record_observations_task(ticks: list[WatchTick]) -> None:
    """Each watch's collected observations and outage records into the store, with its audit entries."""

    def record(t: WatchTick) -> None:
        collected = [o for r in t.results for o in r.observations]
        records = [c for r in t.results for c in r.corroborations]
        if collected or records:
            record_observations.fn(collected, t.w.name, records)

    _each("record-observations", ticks, record)


@task(name="load-observations-batch", cache_policy=NO_CACHE)
def load_observations_task(ticks: list[WatchTick]) -> None:
    """Each watch's observations in its windows, and the native steps its tick judges."""

    def load(t: WatchTick) -> None:
        assert t.windows is not None
        t.visible = load_observations.fn(t.w.country, t.since, t.tick + timedelta(seconds=1), t.windows.since)
        if t.last_tick is None:  # the first tick says which series it has data for but will never judge, and why
            t.notices += never_judged_notices(t.w, t.visible, t.tick, source="watch-tick")
        t.steps = tick_judgements(t.w, t.last_tick, t.tick, t.since)

    _each("load-observations", ticks, load)


@task(name="detect-batch", cache_policy=NO_CACHE)
def detect_batch(ticks: list[WatchTick]) -> None:
    """detect_task's work for every watch of the batch."""
    _each("detect", ticks, lambda t: setattr(t, "det", detect_task.fn(t.w, t.state.detector, t.steps, t.visible)))


@task(name="classify-batch", cache_policy=NO_CACHE)
def classify_batch(ticks: list[WatchTick]) -> None:
    """classify_task's work for every watch of the batch."""
    _each("classify", ticks, lambda t: setattr(t, "cls", classify_task.fn(t.w, t.state.grouper, t.steps, t.det.events)))


@task(name="attribute-batch", cache_policy=NO_CACHE)
def attribute_batch(ticks: list[WatchTick]) -> None:
    """attribute_task's work for every watch, the incidents it compares with loaded once for the batch."""
    active = [t for t in ticks if t.active]
    if not active:
        return
    since = min(t.tick for t in active) - timedelta(days=8)
    until = max(t.tick for t in active) + timedelta(seconds=1)
    with store.session_scope() as s:
        incidents = store.list_incidents(s, since=since, until=until)

    def attribute(t: WatchTick) -> None:
        lo, hi = t.tick - timedelta(days=8), t.tick + timedelta(seconds=1)
        with store.session_scope() as s:
            records = store.list_corroborations(s, t.w.country, lo, hi)
        context = with_observed_signals(attribution_context(incidents, records, t.w.country, lo, hi), t.visible)
        members = list(t.state.grouper.anomalies.values()) + list(t.det.events)
        t.events = attribute_task.fn(t.w, t.cls.events, t.known, members, context)

    _each("attribute", ticks, attribute)


@task(name="notify-batch", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def notify_batch(ticks: list[WatchTick]) -> None:
    """notify_task's work for every watch: its alerts into the outbox, then delivered (each once: the outbox's
    keys make a retry of this task send nothing twice)."""

    def notify(t: WatchTick) -> None:
        t.alerts = notify_task.fn(
            t.w, t.events, notices=t.notices, anomalies=latest_anomalies(t.det.events), gaps=t.det.gaps
        )

    # Slack paces posts per channel (about one a second): watches that post to the same channels deliver one
    # after another, watches with channels of their own side by side, so one watch's backlog delays no other
    by_channels: dict[tuple[str, str], list[WatchTick]] = {}
    for t in ticks:
        by_channels.setdefault((t.w.alerts.channel, t.w.alerts.ops_channel), []).append(t)
    with ThreadPoolExecutor(max_workers=NOTIFY_THREADS, thread_name_prefix="pollwatch-notify") as pool:
        done = [
            pool.submit(contextvars.copy_context().run, _each, "notify", group, notify)
            for group in by_channels.values()
        ]
        for f in done:
            f.result()


@task(name="record-outcomes", cache_policy=NO_CACHE)
def record_outcomes_task(ticks: list[WatchTick], holder: str) -> None:
    """Each watch's decisions, gaps, notices, state and tick in one transaction of its own (record_outcome), then
    the end of its run record, and earlier ticks a dead run left claimed recorded as covered by this one."""

    def record(t: WatchTick) -> None:
        source_gaps, _, sources = collected_summary(t.results)
        t.summary = tick_summary(t.w, t.visible, t.det.events, t.events, t.alerts, t.since, sources)
        record_outcome.fn(
            t.w.name,
            latest_anomalies(t.det.events),
            [e.incident for e in t.events],
            t.det.gaps + source_gaps,
            t.notices,
            state=WatchState(detector=t.det.state, grouper=t.cls.state, playbook_hash=t.w.content_hash),
            tick=t.tick,
            flow_run_id=holder,
            summary=t.summary,
            anomaly_events=t.det.events,
            incident_events=t.events,
            watch_cfg=t.w,
        )
        with store.session_scope() as s:
            lease = tick_claims.lease_for(t.cadence)
            covered = tick_claims.cover_earlier(s, t.w.name, t.tick, t.last_tick, t.cadence, holder, lease)
            if covered:
                t.summary["covered"] = [iso(c) for c in covered]
            audit.record_run_end(
                s,
                watch=t.w.name,
                flow_run_id=holder,
                flow=FLOW,
                state="Completed",
                summary={k: v for k, v in t.summary.items() if isinstance(v, (int, float, str, bool, list))},
            )

    _each("record-outcome", ticks, record)


@task(name="tick-artifacts", cache_policy=NO_CACHE)
def tick_artifacts(ticks: list[WatchTick], holder: str) -> int:
    """One table artifact per watch (`tick-<watch>`), a new version per tick: the watch's run record in Prefect."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate

    async def publish() -> int:
        sem = asyncio.Semaphore(8)
        async with get_client() as client:

            async def one(t: WatchTick) -> None:
                row = {
                    "watch": t.w.name,
                    "tick": iso(t.tick),
                    "outcome": "failed" if t.failed else ("covered" if t.covered_by else "completed"),
                    **{k: v for k, v in t.summary.items() if isinstance(v, (int, float, str))},
                }
                if t.failed:
                    row["error"] = f"{type(t.failed).__name__}: {t.failed}"[:300]
                async with sem:
                    await client.create_artifact(
                        ArtifactCreate(
                            key=re.sub(r"[^a-z0-9-]+", "-", f"tick-{t.w.name}".lower()),
                            type="table",
                            data=[row],
                            description=f"Tick {iso(t.tick)} of {t.w.name} in batch run {holder}",
                            flow_run_id=None if holder.startswith("local-") else uuid.UUID(holder),
                        )
                    )

            await asyncio.gather(*(one(t) for t in ticks))
        return len(ticks)

    from pollwatch.tasks.collect import _run_async

    return _run_async(publish())


def _collect(ticks: list[WatchTick], base_urls: dict[str, str] | None) -> None:
    """One task per source for every watch that enables it, side by side; a source's failure is each watch's gaps."""
    active = [t for t in ticks if t.active]
    by_source: dict[str, list[WatchTick]] = {}
    for t in active:
        for name in enabled_sources(t.w):
            by_source.setdefault(name, []).append(t)
    futures = {
        name: collect_sources_batch.submit(
            name,
            quote([(t.w, t.windows.for_source(name, t.w), t.tick) for t in group if t.windows is not None]),
            (base_urls or {}).get(name),
            min(t.deadline for t in group if t.deadline is not None),
        )
        for name, group in by_source.items()
    }
    for name, future in futures.items():
        for t, result in zip(by_source[name], future.result()):
            t.results.append(result)


def _tick_batch(ticks: list[WatchTick], holder: str, base_urls: dict[str, str] | None, artifacts: bool) -> None:
    """The stages over the claimed ticks of one chunk."""
    load_states_task(quote(ticks), holder)
    _collect(ticks, base_urls)
    record_observations_task(quote(ticks))
    load_observations_task(quote(ticks))
    detect_batch(quote(ticks))
    classify_batch(quote(ticks))
    attribute_batch(quote(ticks))
    notify_batch(quote(ticks))
    record_outcomes_task(quote(ticks), holder)
    for t in ticks:
        if t.failed is not None:
            _tick_failed(t.w, t.tick, t.failed)  # its claim released, the operators told, as a single tick does
            with store.session_scope() as s:
                audit.record_run_end(
                    s, watch=t.w.name, flow_run_id=holder, flow=FLOW, state="Failed", summary={"error": str(t.failed)}
                )
    if artifacts:
        try:
            tick_artifacts(quote(ticks), holder)
        except Exception as exc:  # the record is in pollwatch's store either way
            get_run_logger().warning("tick artifacts not published: %s", exc)


class _Renewer:
    """Renews this run's claims every few seconds while it works (a run that stops renewing is a dead one)."""

    def __init__(self, holder: str, lease: timedelta) -> None:
        self.holder, self.stop, self.every = holder, threading.Event(), lease.total_seconds() / 4
        self.thread = threading.Thread(target=self._loop, name="pollwatch-claims", daemon=True)

    def _loop(self) -> None:
        while not self.stop.wait(self.every):
            try:
                with store.session_scope() as s:
                    tick_claims.renew_claims(s, self.holder)
            except Exception:  # the next attempt may succeed; a lease that lapses only lets another run take over
                pass

    def __enter__(self) -> "_Renewer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


@flow(name=FLOW, log_prints=True, **AUDIT_HOOKS)
def watches_tick(
    watches: list[str] | str,
    tick: datetime | None = None,
    every: int = 60,
    base_urls: dict[str, str] | None = None,
    lane: int = 0,
    lanes: int = 1,
    chunk: int = 0,
    artifacts: bool = True,
) -> dict:
    """Tick every watch due in the slot of `tick` (default: the run's scheduled time, else now) rounded down to
    `every` seconds. `watches`: watch files or names, or a directory of watch files. `lane` of `lanes`: where
    this run starts in the due list when several runs share the slot; `chunk`: ticks claimed at a time (default:
    the due ticks divided by the lanes). `base_urls` may point sources at mirrors (or test servers)."""
    logger = get_run_logger()
    ws = []
    for item in watch_files(watches):
        try:
            ws.append(resolve_watch(item))
        except Exception as exc:  # one broken watch file does not stop the others' ticks
            logger.error("watch %s not ticked: %s", item, " ".join(str(exc).split())[:500])
    # a plain UTC datetime (a run's scheduled time comes as Prefect's own DateTime type)
    when = parse_time(tick or scheduled_time() or utc_now())
    slot_length = timedelta(seconds=every)
    due = due_ticks(ws, when, slot_length)
    holder = current_flow_run_id() or f"local-{uuid.uuid4()}"
    by_name = {w.name: w for w, _ in due}
    hashes = {w.name: w.content_hash for w, _ in due}
    offset = (len(due) * lane) // max(1, lanes)
    pending = [(w.name, t) for w, t in due[offset:] + due[:offset]]
    limit = chunk or max(1, -(-len(due) // max(1, lanes)))
    ran: list[WatchTick] = []
    give_up = floor_time(when, slot_length) + slot_length  # busy watches are retried until the slot ends
    lease = tick_claims.lease_for(slot_length)
    try:
        with _Renewer(holder, lease):
            while pending:
                claimed, busy, rest = claim_ticks_task(pending, holder, limit, hashes, lease)
                if claimed:
                    batch = []
                    for name, t in claimed:
                        phase = by_name[name].phase_at(t)
                        batch.append(WatchTick(by_name[name], t, phase.cadence if phase else slot_length))
                    ran += batch
                    _tick_batch(batch, holder, base_urls, artifacts)
                pending = rest + busy
                if not claimed and not rest:
                    if datetime.now(timezone.utc) >= give_up:
                        logger.warning("%d watch(es) still busy with an earlier tick: left to their next", len(busy))
                        break
                    time.sleep(1)
    except BaseException as exc:
        interrupt_collections(f"the batch's failure ({type(exc).__name__})")
        for t in ran:
            if t.active and not t.summary:
                _tick_failed(t.w, t.tick, exc)
        raise
    done = [t for t in ran if t.failed is None and t.covered_by is None]
    result = {
        "slot": iso(floor_time(when, slot_length)),
        "due": len(due),
        "ticked": len(done),
        "covered": sum(t.covered_by is not None for t in ran),
        "failed": sum(t.failed is not None for t in ran),
        "alerts": sum(len(t.alerts) for t in done),
    }
    logger.info("watches-tick %s: %s", result["slot"], result)
    return result


if __name__ == "__main__":
    import sys

    watches_tick(sys.argv[1:] or "playbooks/watches")
