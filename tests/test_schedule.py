"""Phases to bounded recurrence rules (pure), checked against the phase ticks and Prefect's own reader."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pollwatch import audit, store
from pollwatch.cli import app
from pollwatch.playbook import load_watch
from pollwatch.schedule import (
    AUDIT_APPLY,
    AUDIT_CHANGE,
    concurrency_limit_name,
    deployment_name,
    describe,
    expand_rule,
    phase_schedules,
    record_applied,
    rules_for_ticks,
)
from tests.conftest import KZ_WATCH


def _ticks_by_phase(w):
    return {p.name: p.ticks() for p in w.resolved_phases()}


def _prefect_dates(rule, n: int) -> list[datetime]:
    """What Prefect's server makes of a rule (the scheduler service reads it this way)."""
    from prefect.server.schemas.schedules import RRuleSchedule

    sched = RRuleSchedule(rrule=rule.rrule, timezone=rule.timezone)
    dates = asyncio.run(sched.get_dates(n=n, start=rule.first - timedelta(seconds=1)))
    return [d.astimezone(timezone.utc) for d in dates]


def test_kz_phases_become_bounded_rules_in_local_time(kz_watch):
    specs = phase_schedules(kz_watch)
    assert [s.phase for s in specs] == ["baselining", "heightened", "aftermath"]
    assert [s.deployment for s in specs] == [
        f"kz-2019-presidential-{p}" for p in ("baselining", "heightened", "aftermath")
    ]
    assert [s.ticks for s in specs] == [27, 4 * 24 * 12, 11 * 24]
    heightened = specs[1]
    assert len(heightened.rules) == 1  # Asia/Almaty had no offset change in 2019
    rule = heightened.rules[0]
    assert rule.timezone == "Asia/Almaty"
    # election day 00:00 local minus one day, every 5 minutes, until the last tick before E+3d (local)
    assert rule.rrule == "DTSTART:20190608T000000\nRRULE:FREQ=MINUTELY;INTERVAL=5;UNTIL=20190611T235500"
    assert heightened.first_tick == datetime(2019, 6, 7, 18, 0, tzinfo=timezone.utc)
    ticks = _ticks_by_phase(kz_watch)
    for s in specs:
        assert [t for r in s.rules for t in expand_rule(r)] == ticks[s.phase]


def test_prefect_reads_the_rules_as_the_phase_ticks(kz_watch):
    ticks = _ticks_by_phase(kz_watch)
    for s in phase_schedules(kz_watch):
        rule = s.rules[0]
        n = min(rule.count, 300)
        assert _prefect_dates(rule, n) == ticks[s.phase][:n]


@pytest.mark.parametrize("election_day", [date(2024, 10, 27), date(2024, 3, 31)])
def test_daylight_saving_change_never_shifts_a_tick(kz_watch, election_day):
    """Europe/Berlin changes its offset on election day: rules split at the change; ticks stay 5 min apart in UTC."""
    w = kz_watch.model_copy(update={"timezone": "Europe/Berlin", "election_date": election_day})
    ticks = _ticks_by_phase(w)
    heightened = next(s for s in phase_schedules(w) if s.phase == "heightened")
    assert len(heightened.rules) >= 2
    expanded = [t for r in heightened.rules for t in expand_rule(r)]
    assert expanded == ticks["heightened"]
    assert all(b - a == timedelta(minutes=5) for a, b in zip(expanded, expanded[1:]))
    # the 23- or 25-hour day has 276 or 300 ticks: nothing lost, nothing doubled
    assert heightened.ticks == 4 * 288 + (12 if election_day.month == 10 else -12)
    # Prefect reads each rule as exactly its own ticks (its reader looks at most 1000 dates ahead)
    for r in heightened.rules:
        n = min(r.count, 999)
        assert _prefect_dates(r, n) == expand_rule(r)[:n]


def test_the_repeated_hour_after_fall_back_is_ruled_in_utc(kz_watch):
    w = kz_watch.model_copy(update={"timezone": "Europe/Berlin", "election_date": date(2024, 10, 27)})
    heightened = next(s for s in phase_schedules(w) if s.phase == "heightened")
    zones = [r.timezone for r in heightened.rules]
    assert zones == ["Europe/Berlin", "UTC", "Europe/Berlin"]
    utc_rule = heightened.rules[1]
    assert utc_rule.count == 24  # 02:00-02:59 local, twice
    assert utc_rule.first == datetime(2024, 10, 27, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "cadence,freq",
    [
        (timedelta(seconds=5), "FREQ=SECONDLY;INTERVAL=5"),
        (timedelta(seconds=90), "FREQ=SECONDLY;INTERVAL=90"),
        (timedelta(minutes=15), "FREQ=MINUTELY;INTERVAL=15"),
        (timedelta(hours=2), "FREQ=HOURLY;INTERVAL=2"),
        (timedelta(days=1), "FREQ=DAILY;INTERVAL=1"),
    ],
)
def test_frequency_follows_the_cadence(cadence, freq):
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    ticks = [start + i * cadence for i in range(4)]
    [rule] = rules_for_ticks(ticks, cadence, "America/Caracas")
    assert freq in rule.rrule and rule.count == 4
    assert expand_rule(rule) == ticks


def test_names_and_describe(kz_watch):
    assert deployment_name("KZ 2019/presidential", "Heightened") == "kz-2019-presidential-heightened"
    assert concurrency_limit_name("kz-2019-presidential") == "pollwatch-watch-kz-2019-presidential"
    rows = describe(kz_watch, phase_schedules(kz_watch))
    assert rows[1]["first_local"] == "2019-06-08T00:00:00+06:00" and rows[1]["first_utc"] == "2019-06-07T18:00:00Z"
    assert rows[1]["last_utc"] == "2019-06-11T17:55:00Z" and rows[1]["cadence"] == "5m" and rows[1]["ticks"] == 1152


def test_dry_run_prints_the_schedule_and_changes_nothing():
    result = CliRunner().invoke(app, ["schedule", str(KZ_WATCH), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "heightened   every 5m      1152 ticks" in result.output
    assert "first 2019-06-08T00:00:00+06:00 (2019-06-07T18:00:00Z)" in result.output
    assert "UNTIL=20190611T235500" in result.output
    # a watch whose phases are all over says so, as `playbook validate` does (a schedule would run no tick)
    assert "warning: " in result.stderr and "phases: every phase ended (the last on 2019-06-22" in result.stderr
    result = CliRunner().invoke(app, ["schedule", str(KZ_WATCH), "--dry-run", "--json"])
    doc = json.loads(result.stdout)
    assert [p["phase"] for p in doc["phases"]] == ["baselining", "heightened", "aftermath"]
    with store.session_scope() as s:
        assert audit.count(s) == 0


def test_a_changed_playbook_is_recorded(kz_watch, tmp_path: Path):
    specs = phase_schedules(kz_watch)
    with store.session_scope() as s:
        assert record_applied(s, kz_watch, specs, []) is None
        assert record_applied(s, kz_watch, specs, []) is None  # same playbook: nothing to note
    edited = tmp_path / "kz.yaml"
    edited.write_text(KZ_WATCH.read_text().replace("#pollwatch-kz", "#pollwatch-kz-2"))
    w2 = load_watch(edited)
    assert w2.content_hash != kz_watch.content_hash
    with store.session_scope() as s:
        assert record_applied(s, w2, phase_schedules(w2), []) == kz_watch.content_hash
    with store.session_scope() as s:
        kinds = [e.kind for e in audit.entries(s, watch=kz_watch.name)]
        notices = store.list_notices(s, kz_watch.name)
        assert audit.verify(s).ok
    assert kinds == [AUDIT_APPLY, AUDIT_APPLY, AUDIT_CHANGE, AUDIT_APPLY]
    assert len(notices) == 1 and "playbook of kz-2019-presidential changed" in notices[0].message


def test_prefect_yaml_agrees_with_pollwatch_schedule(kz_watch):
    """prefect.yaml's kz-2019 deployments carry the schedules `pollwatch schedule` derives; entrypoints exist."""
    import ast

    import yaml

    from tests.conftest import REPO

    doc = yaml.safe_load((REPO / "prefect.yaml").read_text())
    pools = {p["name"] for p in doc["definitions"]["work_pools"].values()}
    assert "pollwatch-analysis" in pools and any(p.startswith("pollwatch-vantage-") for p in pools)
    deployments = {d["name"]: d for d in doc["deployments"]}
    for spec in phase_schedules(kz_watch):
        d = deployments[spec.deployment]
        assert d["work_pool"]["name"] == "pollwatch-analysis" and d["concurrency_limit"] == 1
        assert [(s["rrule"], s["timezone"]) for s in d["schedules"]] == [(r.rrule, r.timezone) for r in spec.rules]
        assert f"phase:{spec.phase}" in d["tags"] and "watch:kz-2019-presidential" in d["tags"]
    for d in doc["deployments"]:
        file, _, func = d["entrypoint"].partition(":")
        tree = ast.parse((REPO / file).read_text())
        assert func in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, d["entrypoint"]
