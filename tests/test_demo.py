"""The demo's documented day: what pollwatch finds in it is what the report documented, and nothing else.

The analysis runs as `pollwatch.pipeline.analyse` (the stages the replay flow runs as tasks, without
Prefect), over the demo's own simulated observations, so the test stays a few seconds long.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pollwatch import demo
from pollwatch.pipeline import analyse
from pollwatch.playbook import load_watch

U = timezone.utc
pytestmark = pytest.mark.slow  # about 6 s of simulation and analysis on a quiet machine


@pytest.fixture(scope="module")
def demo_day():
    day = demo.load_scenario()
    w = load_watch(demo.SCENARIOS_DIR.parent / "watches" / f"{day.watch}.yaml")
    sc = demo.simulate_day(w, day, seed=1)
    out = analyse(w, None, w.tick_times(day.replay_from, day.until), sc.observations)
    return w, day, [i.to_public() for i in out.incidents]


def _t(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s.replace("Z", "+00:00")) if s else None


def test_the_demo_finds_the_documented_day_and_nothing_else(demo_day):
    w, day, incidents = demo_day
    by_kind: dict[str, list[dict]] = {}
    for i in incidents:
        by_kind.setdefault(i["kind"], []).append(i)
    assert sorted(by_kind) == ["circumvention_block", "nationwide_outage", "service_block"], incidents
    (cut,) = by_kind["nationwide_outage"]
    assert abs(_t(cut["start"]) - datetime(2019, 6, 9, 5, tzinfo=U)) <= timedelta(minutes=15)
    assert timedelta(minutes=40) <= _t(cut["end"]) - _t(cut["start"]) <= timedelta(minutes=80)
    assert cut["share"] >= 0.6  # "most users"
    periscope, meta = sorted(by_kind["service_block"], key=lambda i: i["start"])
    # still blocked when the report was written
    assert periscope["services"] == ["periscope"] and periscope["end"] is None
    assert abs(_t(periscope["start"]) - datetime(2019, 6, 9, 1, tzinfo=U)) <= timedelta(hours=1)
    assert sorted(meta["services"]) == ["facebook", "instagram", "whatsapp"]
    assert abs(_t(meta["start"]) - datetime(2019, 6, 11, 9, tzinfo=U)) <= timedelta(hours=1)
    (vpn,) = by_kind["circumvention_block"]
    assert _t(vpn["start"]).astimezone(w.tz).date().isoformat() == "2019-06-09"
    assert sorted(vpn["services"]) == ["openvpn", "psiphon", "tor"]
    # the demo's own comparison says the same
    rows = demo.compare(w, day, incidents)
    assert [r.ok for r in rows] == [True] * len(day.events) and len(rows) == len(day.events)
    table = demo.table(w, rows)
    assert "05:00 UTC (11:00 ALMT)" in table and "(not documented)" not in table


def test_the_comparison_reports_a_miss_and_an_extra(demo_day):
    w, day, incidents = demo_day
    without_cut = [i for i in incidents if i["kind"] != "nationwide_outage"]
    extra = dict(incidents[0], id="x", kind="throttling", services=["twitter"])
    rows = demo.compare(w, day, without_cut + [extra])
    assert [r.note for r in rows if not r.ok] == ["not alerted", "not in the report"]
    assert "NOTHING" in demo.table(w, rows) and "(not documented)" in demo.table(w, rows)


def test_a_bad_scenario_names_file_and_field(tmp_path):
    bad = tmp_path / "s.yaml"
    bad.write_text(demo.DEFAULT_SCENARIO.read_text().replace("kind: nationwide_outage", "kind: blackout"))
    with pytest.raises(demo.ScenarioError, match=r"s\.yaml: events\.2\.kind"):
        demo.load_scenario(bad)
