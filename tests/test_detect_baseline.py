"""Baselines: level, spread, coverage and blind hours per series; the baseline flow persists them
and publishes the baseline-health table."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pollwatch import store
from pollwatch.baseline import compute_baselines, health_rows
from pollwatch.jsonl import write_observations
from pollwatch.simulate import simulate
from tests.conftest import KZ_WATCH


@pytest.fixture(scope="module")
def history():
    from pollwatch.playbook import load_watch

    w = load_watch(KZ_WATCH)
    end = w.at_offset(timedelta(days=-1))
    sc = simulate(w, end - timedelta(days=7), end, [], seed=11)
    return w, end, sc.observations


def test_baselines_have_levels_coverage_and_hours(history):
    w, end, obs = history
    bl = {(b.signal, b.entity): b for b in compute_baselines(w, obs, end)}
    bgp = bl[("bgp", "KZ")]
    assert bgp.usable and bgp.detector == "moving_median" and bgp.coverage > 0.95 and bgp.hours_covered == 24
    assert bgp.expected > 1000 and bgp.spread < 0.01 * bgp.expected
    ap = bl[("active_probing", "KZ")]
    assert ap.hours_possible == 168 and ap.hours_covered == 168
    sfr = bl[("service_failure_rate", "KZ/asn=9198/service=whatsapp")]
    assert sfr.detector == "cusum" and 0.0 <= sfr.expected < 0.06 and sfr.spread is not None
    # a series silent at night has blind hours and is not usable
    night = [o for o in obs if o.signal == "bgp" and o.entity_key == "KZ" and not (o.time.astimezone(w.tz).hour < 6)]
    (b,) = compute_baselines(w, night, end)
    assert not b.usable and "blind hours of the day: 00-05h" in b.reason
    country_bgp = [o for o in obs if o.signal == "bgp" and o.entity_key == "KZ"]
    sparse = country_bgp[::5]
    (b,) = compute_baselines(w, sparse, end)
    assert not b.usable and "of the window has data" in b.reason
    rows = health_rows(bl.values())
    assert {"entity", "signal", "points", "expected", "spread", "usable", "why"} <= set(rows[0])


@pytest.mark.usefixtures("prefect_harness")
def test_baseline_flow_persists_and_publishes(history, tmp_path: Path):
    from prefect.client.orchestration import get_client

    from flows.baseline import baseline

    w, end, obs = history
    path = tmp_path / "history.jsonl"
    write_observations([o for o in obs if o.time >= end - timedelta(days=2) or o.signal == "active_probing"], path)
    result = baseline(str(KZ_WATCH), end, str(path))
    assert result["series"] > 100 and result["usable"] >= result["series"] - len(result["blind"])
    with store.session_scope() as s:
        rows = store.list_baselines(s, w.name)
    assert len(rows) == result["series"] and any(r.usable for r in rows)

    import asyncio

    async def artifact():
        async with get_client() as c:
            return await c.read_latest_artifacts()

    keys = [a.key for a in asyncio.run(artifact())]
    assert f"baseline-health-{w.name}" in keys
