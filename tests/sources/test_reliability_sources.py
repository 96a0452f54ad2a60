"""A source down, hanging, rate-limited or returning garbage for an hour of ticks, for real.

IODA is a real HTTP fake (tests/fakes/observatories.py). Every 10 minutes a tick collects the
newest window from it, feeds the detector with the watch state round-tripped through JSON (as the
store keeps it), and stores gaps and notices. For one hour the fake misbehaves: 15 minutes of
HTTP 500, 15 of 429, 15 hanging past the timeout, 15 of garbage. Nothing may be called an
outage, every failing tick must leave gaps and an operator notice, and once data returns a real
outage must still be detected.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from pollwatch import store
from pollwatch.models import IncidentKind, NoticeLevel
from pollwatch.pipeline import WatchState, analyse

pytest.importorskip("pollwatch.sources")
from pollwatch.sources import make_source  # noqa: E402
from tests.fakes.observatories import Sleeps, fast_config, observatories  # noqa: E402

T = datetime(2019, 6, 9, 3, 0, tzinfo=timezone.utc)
STEP = timedelta(minutes=10)
FAULTS = [
    ("500", T + timedelta(minutes=30)),
    ("429", T + timedelta(minutes=45)),
    ("hang", T + timedelta(minutes=60)),
    ("wrong_shape", T + timedelta(minutes=75)),
]  # each for 15 minutes
FAULT_END = T + timedelta(minutes=90)
OUTAGE = (T + timedelta(hours=2), T + timedelta(hours=3))


def _fault_at(tick: datetime) -> str | None:
    for mode, start in FAULTS:
        if start < tick <= start + timedelta(minutes=15):
            return mode
    return None


def test_an_hour_of_a_broken_source_is_gaps_and_notices_not_an_outage(kz_watch, isolated_store):
    w = kz_watch
    with observatories() as obs:
        ioda = obs.ioda
        ioda.hang_seconds = 1.0
        src = make_source(
            "ioda",
            w,
            config=fast_config(ioda.url, timeout=timedelta(seconds=0.2), retries=1, options={"corroboration": False}),
            sleep=Sleeps(),
        )
        history = asyncio.run(src.collect(w, T - timedelta(hours=26), T))
        assert history.observations and not history.gaps
        out = analyse(w, None, [T], history.observations)
        state, known = WatchState.model_validate(out.state.model_dump(mode="json")), {}
        assert out.incidents == []

        ioda.drop("*", *OUTAGE, factor=0.02)  # a real outage once the source is back
        incidents_by_tick: dict[datetime, list] = {}
        failing_ticks = []
        tick = T
        while tick < OUTAGE[0] + timedelta(minutes=40):
            tick += STEP
            mode = _fault_at(tick)
            ioda.clear()
            if mode:
                ioda.fail(mode)
                failing_ticks.append(tick)
            got = asyncio.run(src.collect(w, tick - 2 * STEP, tick))
            if mode:
                assert got.observations == [] and got.gaps, (
                    f"{mode}: a failing fetch must leave gaps, nothing half-read"
                )
                assert [n for n in got.notices if n.level in (NoticeLevel.warning, NoticeLevel.error)], (
                    f"{mode}: operators not told"
                )
            out = analyse(w, state, [tick], got.observations, known)
            state = WatchState.model_validate(out.state.model_dump(mode="json"))
            known.update({i.id: i for i in out.incidents})
            incidents_by_tick[tick] = out.incidents
            with store.session_scope() as s:
                store.add_gaps(s, w.name, got.gaps + out.gaps)
                store.add_notices(s, got.notices)
                store.save_incidents(s, out.incidents)

    assert len(failing_ticks) >= 4
    before_outage = [i for t, incs in incidents_by_tick.items() if t < OUTAGE[0] for i in incs]
    assert before_outage == [], (
        f"false outage while the source was broken: {[(i.kind, i.start) for i in before_outage]}"
    )
    after = [i for t, incs in incidents_by_tick.items() if t >= OUTAGE[0] for i in incs]
    assert any(i.kind is IncidentKind.nationwide_outage for i in after), "detection did not resume when data returned"
    first = min(t for t, incs in incidents_by_tick.items() if incs)
    assert first - OUTAGE[0] <= timedelta(minutes=20)

    with store.session_scope() as s:
        gaps = store.list_gaps(s, w.name)
        notices = store.list_notices(s, w.name)
    # the broken hour is covered by recorded gaps for the country's bgp series
    country_bgp = [g for g in gaps if g.entity == "KZ" and g.signal == "bgp"]
    assert (
        country_bgp
        and min(g.start for g in country_bgp) <= FAULTS[0][1]
        and max(g.end for g in country_bgp) >= FAULTS[-1][1]
    )
    messages = " | ".join(n.message for n in notices)
    for word in ("http", "rate_limited", "timeout", "shape"):
        assert word in messages, f"no operator notice about {word}: {messages[:500]}"
