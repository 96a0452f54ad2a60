"""Validate = run: what `pollwatch playbook validate` accepts, the tick, `playbook show`, `schedule` and Prefect
accept too.

Each check names the file:line and says how to fix it; a property test draws watches, and every one that validates
is shown, scheduled, analysed tick by tick (detect, classify, attribute with its milestones, alert texts) and has
its Prefect names checked by Prefect's own validators. One hostile-but-valid watch runs a real flow tick.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pollwatch.cli import app
from pollwatch.playbook import PlaybookError, load_watch
from tests.conftest import REPO

TEMPLATE = str(REPO / "playbooks" / "rapid-response.yaml")


def _watch_text(**fields: object) -> str:
    doc = {
        "template": TEMPLATE,
        "name": "test-watch",
        "country": "KZ",
        "election_date": "2019-06-09",
        "timezone": "Asia/Almaty",
    }
    doc.update(fields)
    return yaml.safe_dump(doc, sort_keys=False)


def _problems(tmp_path: Path, text: str) -> list[str]:
    f = tmp_path / "watch.yaml"
    f.write_text(text)
    with pytest.raises(PlaybookError) as err:
        load_watch(f)
    return err.value.problems


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    "fields,needle,field,message",
    [
        ({"milestones": [{"name": "polls_open", "at": "7am"}]}, "7am", "milestones.0.at", "'HH:MM'"),
        (
            {"milestones": [{"name": "count", "at": "2019-02-30T09:00"}]},
            "2019-02-30",
            "milestones.0.at",
            "'YYYY-MM-DDTHH:MM'",
        ),
        ({"name": "KZ_2019"}, "KZ_2019", "name", "write 'kz-2019'"),
        ({"name": "../../x"}, "../../x", "name", "write 'x'"),
        ({"election_date": "9 June 2019"}, "9 June", "election_date", "expected a date YYYY-MM-DD"),
        (
            {"services": [{"name": "whatsapp", "test": "whatsap"}]},
            "test: whatsap",
            "services.0.test",
            "did you mean 'whatsapp'",
        ),
        (
            {"circumvention": [{"name": "vpn", "test": "vpn"}]},
            "test: vpn",
            "circumvention.0.test",
            "not an OONI test name",
        ),
        ({"services": [{"name": "a=b"}]}, "a=b", "services.0.name", "without '='"),
        ({"providers": [{"asn": "ASX1", "name": "x"}]}, "ASX1", "providers.0.asn", "'AS20294'"),
        ({"providers": [{"asn": True, "name": "x"}]}, "asn: true", "providers.0.asn", "expected an AS number"),
        ({"vantages": [{"name": "v", "work_pool": "pool/a"}]}, "pool/a", "vantages.0.work_pool", "Prefect refuses"),
        (
            {"regions": [{"code": "Almaty", "name": "Almaty"}]},
            "code: Almaty",
            "regions.0.code",
            "not an ISO 3166-2 code of KZ",
        ),
        (
            {"regions": [{"code": "RU-MOW", "name": "Moscow"}]},
            "RU-MOW",
            "regions.0.code",
            "not an ISO 3166-2 code of KZ",
        ),
        (
            {
                "regions": [{"code": "KZ-75", "name": "Almaty"}],
                "providers": [{"asn": 9198, "name": "KT", "regions": ["Astana"]}],
            },
            "Astana",
            "providers.0.regions.0",
            "none of the watch's regions",
        ),
    ],
)
def test_validate_names_line_field_and_fix(tmp_path: Path, fields: dict, needle: str, field: str, message: str):
    text = _watch_text(**fields)
    problems = _problems(tmp_path, text)
    problem = next(p for p in problems if f": {field}: " in p)
    assert problem.startswith(f"{tmp_path / 'watch.yaml'}:{_line_of(text, needle)}: {field}: "), problems
    assert message in problem


def test_tab_indentation_names_its_line(tmp_path: Path):
    text = _watch_text() + "providers:\n\t- {asn: 9198, name: KT}\n"
    problems = _problems(tmp_path, text)
    assert problems == [
        f"{tmp_path / 'watch.yaml'}:{text.count(chr(10))}: a tab in the indentation: YAML indents with spaces "
        "only; replace the tab with spaces (two per level, as in the template)"
    ]


def test_accepted_forms_mean_what_the_tick_reads(tmp_path: Path):
    f = tmp_path / "watch.yaml"
    f.write_text(
        _watch_text(
            providers=[{"asn": "AS9198", "name": "KT", "upstreams": ["as 20485"], "regions": ["Almaty"]}],
            regions=[{"code": "KZ-75", "name": "Almaty"}, {"code": "4412", "name": "IODA's id"}],
            milestones=[{"name": "open", "at": "07:00"}, {"name": "results", "at": "2019-06-10T09:00+06:00"}],
        )
    )
    w = load_watch(f)
    assert [p.asn for p in w.providers] == [9198] and w.providers[0].upstreams == [20485]
    assert w.milestone_times() == {
        "open": datetime(2019, 6, 9, 1, 0, tzinfo=timezone.utc),
        "results": datetime(2019, 6, 10, 3, 0, tzinfo=timezone.utc),
    }


def test_warnings_for_ended_phases_and_withdrawn_region_codes(tmp_path: Path):
    past = tmp_path / "past.yaml"
    past.write_text(text := _watch_text(regions=[{"code": "KZ-ALA", "name": "Almaty"}]))
    future = tmp_path / "future.yaml"
    future.write_text(_watch_text(election_date=(datetime.now(timezone.utc) + timedelta(days=60)).date().isoformat()))
    result = CliRunner().invoke(app, ["playbook", "validate", str(past), str(future)])
    assert result.exit_code == 0, result.output
    assert f"{past}: ok (watch test-watch)" in result.stdout and f"{future}: ok (watch test-watch)" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert any(
        w.startswith(f"warning: {past}:{_line_of(text, 'election_date')}: phases: every phase ended") for w in warnings
    ), warnings
    assert any("KZ-ALA are not among KZ's current ISO 3166-2 codes" in w for w in warnings), warnings
    assert not any(str(future) in w for w in warnings)


# --- the property: what validates, runs ---------------------------------------------------------------------


def mostly(valid: st.SearchStrategy, invalid: st.SearchStrategy) -> st.SearchStrategy:
    """Valid about eleven times in twelve, so that a good share of whole drawn watches validate."""
    return st.integers(0, 11).flatmap(lambda i: invalid if i == 11 else valid)


NAME = mostly(
    st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True),
    st.text(st.sampled_from("abcXYZ019-_. /é"), min_size=1, max_size=12),
)
TIME = mostly(
    st.one_of(
        st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59)),
        st.builds(lambda d, h: f"2019-06-{d:02d}T{h:02d}:30", st.integers(8, 11), st.integers(0, 23)),
        st.sampled_from(["2019-06-09T07:00+06:00", "2019-06-09", " 08:15 ", "2019-06-09T23:30Z"]),
    ),
    st.sampled_from(["7am", "25:00", "noon", "T07:00", "2019-02-30T07:00", "7 pm"]),
)
REGION = mostly(
    st.sampled_from(["KZ-75", "KZ-ALA", "KZ-AST", "4412", "KZ-11"]),
    st.sampled_from(["Almaty", "kz-75", "RU-MOW", "KZ-1234"]),
)
ASN = mostly(
    st.one_of(st.integers(1, 2**32 - 1), st.sampled_from(["AS9198", "as29355", "AS 21299"])),
    st.sampled_from(["ASX", "-5", "0", "AS", "4294967296"]),
)
TEST = mostly(
    st.sampled_from(["web_connectivity", "whatsapp", "telegram", "signal", "tor", "psiphon", "facebook_messenger"]),
    st.sampled_from(["WhatsApp", "http", "vpn"]),
)
PHASE = mostly(st.sampled_from(["heightened", "day 1", "élection"]), st.sampled_from(["a/b", "50%", " "]))
SERVICE = mostly(st.sampled_from(["whatsapp", "site", "web site"]), st.sampled_from(["a=b", "x/y", ""]))
SIGNALS = {"bgp": {"source": "ioda", "step": "5m", "window": "2h", "warm_up": "30m", "warning": 0.9, "critical": 0.5}}


@st.composite
def watch_docs(draw: st.DrawFn) -> dict:
    regions = [{"code": c, "name": f"r{i}"} for i, c in enumerate(draw(st.lists(REGION, max_size=2, unique=True)))]
    return {
        "name": draw(NAME),
        "country": "KZ",
        "election_date": "2019-06-09",
        "timezone": "Asia/Almaty",
        "phases": [{"name": draw(PHASE), "start": "-1d", "end": "2d", "cadence": "5m"}],
        "signals": SIGNALS,
        "providers": [
            {
                "asn": draw(ASN),
                "name": f"p{i}",
                "regions": draw(
                    st.lists(st.sampled_from([r["code"] for r in regions] or ["x"]), max_size=1 if regions else 0)
                ),
            }
            for i in range(draw(st.integers(1, 2)))
        ],
        "regions": regions,
        "services": [{"name": draw(SERVICE), "test": draw(TEST)}],
        "milestones": [{"name": f"m{i}", "at": t} for i, t in enumerate(draw(st.lists(TIME, min_size=1, max_size=2)))],
    }


@pytest.fixture(scope="module")
def small_scenario() -> tuple[datetime, list]:
    """Three hours of a two-provider KZ watch with a nationwide outage in the last hour, reused by every example
    (the drawn watches differ in names and times, not in what they observe)."""
    from pollwatch.models import IncidentKind
    from pollwatch.playbook import Watch
    from pollwatch.simulate import EventSpec, simulate

    base = Watch(
        name="scenario",
        country="KZ",
        election_date="2019-06-09",
        timezone="Asia/Almaty",
        signals=SIGNALS,
        providers=[{"asn": 9198, "name": "a"}, {"asn": 29355, "name": "b"}],
    )
    start = datetime(2019, 6, 9, 3, 0, tzinfo=timezone.utc)
    ev = EventSpec(
        kind=IncidentKind.nationwide_outage, start=start + timedelta(hours=2), end=start + timedelta(hours=3)
    )
    sc = simulate(base, start, start + timedelta(hours=3), [ev], seed=4, missing_rate=0.0)
    return start, [o for o in sc.observations if o.signal == "bgp"]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(doc=watch_docs())
def test_every_watch_that_validates_runs(tmp_path: Path, small_scenario, doc: dict):
    from prefect.types.names import raise_on_name_alphanumeric_dashes_only
    from prefect.types import WITHOUT_BANNED_CHARACTERS

    from pollwatch.alerts import build_alerts
    from pollwatch.pipeline import analyse
    from pollwatch.schedule import phase_schedules
    from pollwatch.timeutil import tick_grid

    f = tmp_path / "drawn.yaml"
    f.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = CliRunner().invoke(app, ["playbook", "validate", str(f)])
    event("validates" if result.exit_code == 0 else "refused")
    if result.exit_code != 0:
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert re.match(rf"^{re.escape(str(f))}:\d+: ", result.stderr), result.stderr  # an error that names file:line
        return
    w = load_watch(f)
    # the names Prefect gets: artifact keys (flows/replay.py, flows/report.py, tasks/collect.py), deployments, runs
    for key in (f"replay-incidents-{w.name}", f"replay-summary-{w.name}", f"report-{w.name}", f"coverage-{w.name}"):
        raise_on_name_alphanumeric_dashes_only(key, "artifact key")
    for s in phase_schedules(w):
        assert re.match(WITHOUT_BANNED_CHARACTERS, s.deployment), s.deployment
    shown = CliRunner().invoke(app, ["playbook", "show", str(f)])
    assert shown.exit_code == 0, shown.output
    start, observations = small_scenario
    outcome = analyse(
        w, None, tick_grid(start + timedelta(hours=1), start + timedelta(hours=3), timedelta(minutes=30)), observations
    )
    assert outcome.incidents, "the nationwide outage in the last hour is found"
    assert all(a.text for a in build_alerts(w, outcome.events))


def test_a_hostile_but_valid_watch_runs_a_real_tick(tmp_path: Path, prefect_harness, small_scenario):
    """Numeric IODA region, 'AS' ASNs, a milestone with its own zone, a phase name
    with spaces: a flow tick completes.
    """
    from pollwatch.flows.watch_tick import watch_tick
    from pollwatch.jsonl import write_observations

    start, observations = small_scenario
    f = tmp_path / "0-odd-watch.yaml"
    f.write_text(
        yaml.safe_dump(
            {
                "name": "0-odd-watch",
                "country": "KZ",
                "election_date": "2019-06-09",
                "timezone": "Asia/Almaty",
                "phases": [{"name": "election day (local)", "start": "-1d", "end": "2d", "cadence": "30m"}],
                "signals": SIGNALS,
                "providers": [{"asn": "AS9198", "name": "a", "regions": ["4412"]}, {"asn": "as29355", "name": "b"}],
                "regions": [{"code": "4412", "name": "Almaty"}],
                "milestones": [
                    {"name": "polls open", "at": "2019-06-09T07:00+06:00"},
                    {"name": "close", "at": "20:00"},
                ],
            }
        )
    )
    obs = tmp_path / "obs.jsonl"
    write_observations(observations, obs)
    result = watch_tick(str(f), start + timedelta(hours=3), str(obs))
    assert result["skipped"] is False and result["incident_events"] >= 1
