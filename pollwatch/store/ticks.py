"""Between ticks: the detectors' state per watch, one row per completed (or claimed) tick, and leases."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from pollwatch.store.tables import LeaseRow, TickRow, WatchStateRow
from pollwatch.timeutil import utc_now


def load_watch_state(session: Session, watch: str) -> tuple[dict[str, Any] | None, datetime | None]:
    row = session.get(WatchStateRow, watch)
    if row is None:
        return None, None
    return row.state, row.last_tick


def save_watch_state(session: Session, watch: str, state: dict[str, Any], last_tick: datetime) -> None:
    row = session.get(WatchStateRow, watch)
    if row is None:
        session.add(WatchStateRow(watch=watch, state=state, last_tick=last_tick, updated_at=utc_now()))
    else:
        row.state, row.last_tick, row.updated_at = state, last_tick, utc_now()


TICK_RUNNING = "running"


def tick_done(session: Session, watch: str, tick: datetime) -> bool:
    """True when the tick completed, or a run has claimed it (see claim_tick)."""
    return session.execute(select(TickRow.id).where(TickRow.watch == watch, TickRow.tick == tick)).first() is not None


def claim_tick(
    session: Session,
    watch: str,
    tick: datetime,
    flow_run_id: str | None,
    stale_after: timedelta = timedelta(minutes=15),
) -> bool:
    """Claim (watch, tick) before doing any of its work; False when it is done or another run holds it.

    The claim is the tick's row, marked running (`completed_at` holds the claim time) until
    mark_tick_done completes it, so two runs of one tick started at once cannot both run the
    stages. The same flow run may claim again (a Prefect retry); a claim older than `stale_after`
    (a worker killed mid-tick) may be taken over. Commit the claim in its own transaction.
    """
    row = session.execute(select(TickRow).where(TickRow.watch == watch, TickRow.tick == tick)).scalar_one_or_none()
    now = utc_now()
    if row is None:
        try:
            with session.begin_nested():  # a concurrent claim on PostgreSQL surfaces here as a unique violation
                session.add(
                    TickRow(
                        watch=watch,
                        tick=tick,
                        completed_at=now,
                        flow_run_id=flow_run_id,
                        summary={"status": TICK_RUNNING},
                    )
                )
        except IntegrityError:
            return False
        return True
    if (row.summary or {}).get("status") != TICK_RUNNING:
        return False
    if (flow_run_id is not None and row.flow_run_id == flow_run_id) or now - row.completed_at > stale_after:
        row.completed_at, row.flow_run_id = now, flow_run_id
        return True
    return False


def release_tick(session: Session, watch: str, tick: datetime, flow_run_id: str | None) -> bool:
    """Give up this run's claim on a tick that failed, so that the same tick can run again at once.

    Only a claim still running and held by `flow_run_id` is removed (a completed tick stays completed).
    """
    held = TickRow.flow_run_id.is_(None) if flow_run_id is None else TickRow.flow_run_id == flow_run_id  # type: ignore[union-attr]
    rows = session.execute(select(TickRow).where(TickRow.watch == watch, TickRow.tick == tick, held)).scalars().all()
    released = [r for r in rows if (r.summary or {}).get("status") == TICK_RUNNING]
    for r in released:
        session.delete(r)
    return bool(released)


def mark_tick_done(
    session: Session, watch: str, tick: datetime, flow_run_id: str | None, summary: dict[str, Any]
) -> None:
    summary = json.loads(json.dumps(summary, default=str))
    row = session.execute(select(TickRow).where(TickRow.watch == watch, TickRow.tick == tick)).scalar_one_or_none()
    if row is None:
        session.add(TickRow(watch=watch, tick=tick, completed_at=utc_now(), flow_run_id=flow_run_id, summary=summary))
    else:  # completing this run's claim
        row.completed_at, row.flow_run_id, row.summary = utc_now(), flow_run_id, summary


def list_ticks(session: Session, watch: str) -> list[TickRow]:
    return list(session.execute(select(TickRow).where(TickRow.watch == watch).order_by(TickRow.tick)).scalars())


def acquire_lease(
    session: Session, name: str, holder: str, ttl: timedelta, holder_dead: Callable[[str], bool] | None = None
) -> bool:
    """Take or extend the lease `name` for `holder` until now + ttl; False while someone else holds it unexpired.

    Taking an expired lease is one conditional UPDATE, so of two processes racing for it (on
    PostgreSQL too) only one sees its row changed. `holder_dead(other)` may say that the current
    holder is gone (its process no longer exists): its lease is taken over at once the same way.
    Commit it in its own transaction.
    """
    now = utc_now()
    taken = session.execute(
        update(LeaseRow)
        .where(LeaseRow.name == name, or_(LeaseRow.holder == holder, LeaseRow.expires_at < now))
        .values(holder=holder, expires_at=now + ttl)
    ).rowcount
    if taken:
        return True
    current = session.execute(select(LeaseRow.holder).where(LeaseRow.name == name)).scalar_one_or_none()
    if current is not None:
        if holder_dead is None or not holder_dead(current):
            return False
        return bool(
            session.execute(
                update(LeaseRow)
                .where(LeaseRow.name == name, LeaseRow.holder == current)
                .values(holder=holder, expires_at=now + ttl)
            ).rowcount
        )
    try:
        with session.begin_nested():  # a concurrent first claim surfaces here as a unique violation
            session.add(LeaseRow(name=name, holder=holder, expires_at=now + ttl))
    except IntegrityError:
        return False
    return True


def release_lease(session: Session, name: str, holder: str) -> None:
    session.execute(delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder))
