"""Claims of batch runs on many watches' ticks: which run ticks which watch, and what a dead run leaves behind.

A batch run (flows/watches_tick.py) claims each watch's tick with the same per-(watch, tick) claim a single
tick takes (`store.claim_tick`), but on a lease: the run renews its claims every few seconds while it works,
and a claim not renewed for `lease` belongs to a run that stopped (its worker died) and may be taken over.
Several runs (lanes, on several workers) claim from the same due list, so each watch's tick is ticked by
exactly one of them. A watch whose earlier tick is still claimed by a live run is busy: it is not claimed
(two ticks of one watch never run at once). An earlier tick left claimed by a dead run, or not claimed while its
watch was busy, is recorded as covered by the watch's next completed tick, which caught up on its data.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pollwatch import store

LEASE = timedelta(seconds=30)  # a claim not renewed for this long is a dead run's (a run renews every quarter of it)


def lease_for(cadence: timedelta) -> timedelta:
    """The lease of a claim at `cadence`: half of it, at most `LEASE`, so that a dead run's claims have lapsed by
    the next tick (which then takes the watch over), and at least 2 s of renewals' slack."""
    return max(timedelta(seconds=2), min(LEASE, cadence / 2))


def _running(row: Any) -> bool:
    return (row.summary or {}).get("status") == store.TICK_RUNNING


Item = tuple[str, datetime]


def claim_ticks(
    session: Any, items: list[Item], holder: str, lease: timedelta = LEASE, limit: int | None = None
) -> tuple[list[Item], list[Item], list[Item]]:
    """Claim up to `limit` of the (watch, tick) items for `holder`, in order: (claimed, busy, not yet looked at).
    Done ticks and ticks another live run holds are none of them; busy ones wait for an earlier tick of their
    watch that a live run still holds."""
    claimed: list[Item] = []
    busy: list[Item] = []
    names = list(dict.fromkeys(name for name, _ in items))
    held: dict[str, list[Any]] = {}
    rows = session.execute(select(store.TickRow).where(store.TickRow.watch.in_(names))).scalars() if names else []
    for row in rows:
        if _running(row):
            held.setdefault(row.watch, []).append(row)
    now = datetime.now(timezone.utc)
    for i, (name, tick) in enumerate(items):
        if limit is not None and len(claimed) >= limit:
            return claimed, busy, items[i:]
        if any(r.tick < tick and r.flow_run_id != holder and now - r.completed_at <= lease for r in held.get(name, [])):
            busy.append((name, tick))
            continue
        if store.claim_tick(session, name, tick, holder, stale_after=lease):
            claimed.append((name, tick))
    return claimed, busy, []


def renew_claims(session: Any, holder: str) -> int:
    """Extend the lease of every claim `holder` still holds (its ticks in progress); how many."""
    rows = session.execute(select(store.TickRow).where(store.TickRow.flow_run_id == holder)).scalars()
    now, n = datetime.now(timezone.utc), 0
    for row in rows:
        if _running(row):
            row.completed_at, n = now, n + 1
    return n


MAX_COVERED = timedelta(days=1)  # missed ticks recorded as covered reach back at most this far


def cover_earlier(
    session: Any,
    watch: str,
    tick: datetime,
    last_tick: datetime | None,
    cadence: timedelta,
    holder: str,
    lease: timedelta = LEASE,
) -> list[datetime]:
    """The ticks of `watch` between its last completed tick and `tick` that did not complete, recorded as covered
    by `tick`, which caught up on their data (a tick collects from the last completed one on): those a run that
    stopped renewing its claim left (`abandoned_by` names it) and those no run claimed (the watch was busy with an
    earlier tick). So every due tick has its row, done once. Returns their times."""
    if last_tick is None:
        return []
    rows = {
        r.tick: r
        for r in session.execute(
            select(store.TickRow).where(
                store.TickRow.watch == watch, store.TickRow.tick > last_tick, store.TickRow.tick < tick
            )
        ).scalars()
    }
    now, out = datetime.now(timezone.utc), []
    t = max(last_tick, tick - MAX_COVERED) + cadence
    while t < tick:
        row = rows.get(t)
        summary = {"covered_by": tick.isoformat()}
        if row is None:
            try:
                with session.begin_nested():
                    session.add(
                        store.TickRow(watch=watch, tick=t, completed_at=now, flow_run_id=holder, summary=summary)
                    )
                out.append(t)
            except IntegrityError:  # claimed meanwhile: that run records it
                pass
        elif _running(row) and row.flow_run_id != holder and now - row.completed_at > lease:
            store.mark_tick_done(session, watch, t, holder, {**summary, "abandoned_by": row.flow_run_id})
            out.append(t)
        t += cadence
    return out
