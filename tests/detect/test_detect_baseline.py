"""Baselines: level, spread, coverage and blind hours per series; the baseline flow persists them
and publishes the baseline-health table."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pollwatch import store
from pollwatch.baseline import compute_baselines, health_rows, never_judged, never_judged_notices
from pollwatch.jsonl import write_observations
from pollwatch.simulate import simulate
from tests.conftest import KZ_WATCH
from tests.fakes.watches import write_kz_watch


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


def test_series_that_are_never_judged_are_named_with_their_setting(history):
    """A 0..10 index under min_prediction 10, a series shorter than its warm-up and
    a stuck one each produce a notice.
    """
    w, end, obs = history
    w = w.model_copy(deep=True)
    w.signals["active_probing"].min_prediction = 1e9
    bgp = [o for o in obs if o.signal == "bgp"]
    short = [o for o in bgp if o.entity_key == "KZ/asn=9198" and o.time >= end - timedelta(hours=2)]
    stuck = [o.model_copy(update={"value": 42.0}) for o in bgp if o.entity_key == "KZ/asn=29355"]
    ap = [o for o in obs if o.signal == "active_probing"]
    healthy = [o for o in bgp if o.entity_key == "KZ"]
    got = {(sig, ent): (setting, why) for sig, ent, setting, why in never_judged(w, ap + short + stuck + healthy)}
    assert got[("active_probing", "KZ")][0] == "signals.active_probing.min_prediction"
    assert "below min_prediction (1e+09): never judged" in got[("active_probing", "KZ")][1]
    assert got[("bgp", "KZ/asn=9198")] == (
        "signals.bgp.warm_up",
        "only 2.0 h of data, less than warm_up (6 h): not judged yet",
    )
    assert got[("bgp", "KZ/asn=29355")][1].startswith("constant at 42 over")
    assert ("bgp", "KZ") not in got, "a healthy series is not named"
    notices = never_judged_notices(w, ap + short + stuck + healthy, end)
    texts = {n.message.split(" because of ")[1].split(":")[0]: n for n in notices}
    assert set(texts) == {"signals.active_probing.min_prediction", "signals.bgp.warm_up", "signals.bgp"}
    mp = texts["signals.active_probing.min_prediction"]
    assert mp.level.value == "warning" and mp.message.startswith(
        f"{len({o.entity_key for o in ap})} series with data not judged"
    )
    assert "(and " in mp.message and mp.source == "baseline"
    assert never_judged_notices(w, healthy, end) == []


@pytest.mark.usefixtures("prefect_harness")
def test_baseline_flow_persists_and_publishes(history, tmp_path: Path):
    from prefect.client.orchestration import get_client

    from pollwatch.flows.baseline import baseline

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
    assert result["never_judged"] == []  # every simulated series is judged


@pytest.mark.usefixtures("prefect_harness")
def test_baseline_flow_and_first_tick_name_the_series_never_judged(history, tmp_path: Path):
    from pollwatch.flows.baseline import baseline
    from pollwatch.flows.watch_tick import watch_tick

    w, end, obs = history
    watch_file = tmp_path / "index.yaml"
    watch_file.write_text(
        KZ_WATCH.read_text().replace("name: kz-2019-presidential", "name: kz-index-10")
        + "\nsignals:\n  active_probing: {min_prediction: 1000000}\n"
    )
    path = tmp_path / "history.jsonl"
    write_observations(
        [o for o in obs if o.time >= end - timedelta(hours=30) and o.signal in ("bgp", "active_probing")], path
    )
    result = baseline(str(watch_file), end, str(path))
    assert len(result["never_judged"]) == 1 and "signals.active_probing.min_prediction" in result["never_judged"][0]
    assert result["never_judged"][0].startswith("11 series") and "KZ/asn=21299: its level" in result["never_judged"][0]
    with store.session_scope() as s:
        notices = store.list_notices(s, "kz-index-10")
    assert any("min_prediction" in n.message for n in notices)
    tick = watch_tick(str(watch_file), end, str(path))
    assert not tick.get("skipped")
    with store.session_scope() as s:
        firsts = [n for n in store.list_notices(s, "kz-index-10") if n.source == "watch-tick"]
    assert len(firsts) == 1 and "signals.active_probing.min_prediction" in firsts[0].message


@pytest.mark.usefixtures("prefect_harness")
def test_baseline_flow_fetches_history_from_the_sources(tmp_path: Path):
    from datetime import datetime, timezone

    from pollwatch.flows.baseline import baseline
    from tests.fakes.observatories import observatories

    watch_file = write_kz_watch(tmp_path, "kz-baseline-sources", election_date="2019-06-12", fast=True, radar=False)
    end = datetime(2019, 6, 9, 6, 0, tzinfo=timezone.utc)
    with observatories() as obs:
        obs.ripestat.resources["KZ"] = {"asn": ["9198", "29355"], "ipv4": ["2.72.0.0/13"], "ipv6": []}
        obs.ioda.fail("500", path="/signals/raw/asn")
        result = baseline(str(watch_file), end, None, obs.base_urls())
    assert result["series"] > 0 and result["gaps"] > 0  # the failing IODA ASN queries are gaps, not errors
    with store.session_scope() as s:
        rows = store.list_baselines(s, "kz-baseline-sources")
        assert {r.source for r in rows} >= {"ioda", "ooni"}
        assert all(r.window_end == end for r in rows)
        gaps = store.list_gaps(s, "kz-baseline-sources")
        assert {g.entity for g in gaps if g.source == "ioda"} == {"KZ/asn=9198", "KZ/asn=29355"}
