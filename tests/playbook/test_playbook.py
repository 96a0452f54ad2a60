"""Playbook loading: the shipped watch resolves correctly, and bad files get errors naming file:line and field."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pollwatch.cli import app
from pollwatch.playbook import PlaybookError, load_playbook, load_watch
from tests.conftest import KZ_WATCH, REPO


def test_kz_watch_phases_resolve_in_local_time(kz_watch):
    phases = {p.name: p for p in kz_watch.resolved_phases()}
    # Asia/Almaty was UTC+6 in 2019: election day 00:00 local is 18:00 UTC the day before.
    assert phases["heightened"].start == datetime(2019, 6, 7, 18, 0, tzinfo=timezone.utc)
    assert phases["heightened"].end == datetime(2019, 6, 11, 18, 0, tzinfo=timezone.utc)
    assert len(phases["heightened"].ticks()) == 4 * 24 * 12
    assert phases["baselining"].start == datetime(2019, 5, 11, 18, 0, tzinfo=timezone.utc)
    assert kz_watch.milestone_times()["polls_close"] == datetime(2019, 6, 9, 14, 0, tzinfo=timezone.utc)
    assert kz_watch.signals["bgp"].warning == 0.99 and kz_watch.signals["active_probing"].window.days == 7
    assert kz_watch.alerts.channel == "#pollwatch-kz"  # the watch overrides the template


def test_dst_change_does_not_shift_local_phase_boundaries(tmp_path: Path):
    f = tmp_path / "w.yaml"
    f.write_text(
        f"template: {REPO / 'playbooks' / 'rapid-response.yaml'}\nname: us\ncountry: US\n"
        "election_date: 2024-11-05\ntimezone: America/New_York\n"
    )
    w = load_watch(f)
    base = {p.name: p for p in w.resolved_phases()}["baselining"]
    # 28 local days before 5 Nov crosses the end of DST (3 Nov): midnight stays midnight locally.
    assert base.start.astimezone(w.tz).hour == 0
    assert base.start.utcoffset().total_seconds() == 0 and base.start.hour == 4  # EDT midnight = 04:00 UTC


BAD_CASES = [
    ("cadence: 5 minutes", "phases.0.cadence", "expected a duration"),
    ("timezone: Mars/Olympus", "timezone", "unknown time zone"),
    ("country: XQ", "country", "unknown country"),
    # a coordinator's likely slips: the name or the alpha-3 code for the country, a misspelt zone
    ("country: Ghana", "country", "expected an ISO 3166-1 alpha-2 code: write 'GH' (Ghana)"),
    ("country: GHA", "country", "expected an ISO 3166-1 alpha-2 code: write 'GH' (Ghana)"),
    ("timezone: Africa/Acra", "timezone", "such as 'Asia/Almaty': did you mean 'Africa/Accra'?"),
    ("colour: blue", "colour", "unknown key"),
    ("election_date: [1, 2]", "election_date", "date"),
]


@pytest.mark.parametrize("line,field,message", BAD_CASES)
def test_errors_name_file_line_and_field(tmp_path: Path, line: str, field: str, message: str):
    base = {
        "template": str(REPO / "playbooks" / "rapid-response.yaml"),
        "name": "test-watch",
        "country": "KZ",
        "election_date": "2019-06-09",
        "timezone": "Asia/Almaty",
    }
    key = line.split(":")[0]
    text = ""
    for k, v in base.items():
        if k != key:
            text += f"{k}: {v}\n"
    if key == "cadence":
        text += "phases:\n  - name: p\n    start: -1d\n    end: 1d\n    " + line + "\n"
        expected_line = text.count("\n")
    else:
        text += line + "\n"
        expected_line = text.count("\n")
    f = tmp_path / "watch.yaml"
    f.write_text(text)
    with pytest.raises(PlaybookError) as err:
        load_playbook(f)
    problem = next(p for p in err.value.problems if f": {field}:" in p)
    assert problem.startswith(f"{f}:{expected_line}: {field}: ")
    assert message in problem


def test_error_in_template_points_to_the_template(tmp_path: Path):
    tpl = tmp_path / "tpl.yaml"
    tpl.write_text("name: tpl\nsignals:\n  bgp:\n    source: ioda\n    warning: lots\n")
    w = tmp_path / "w.yaml"
    w.write_text("template: tpl.yaml\nname: w\ncountry: KZ\nelection_date: 2019-06-09\n")
    with pytest.raises(PlaybookError) as err:
        load_playbook(w)
    assert any(p.startswith(f"{tpl}:5: signals.bgp.warning:") for p in err.value.problems)


def test_broken_yaml_and_missing_template(tmp_path: Path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\ncountry: [KZ\n")
    with pytest.raises(PlaybookError, match=r"bad.yaml:\d+: not valid YAML"):
        load_playbook(f)
    g = tmp_path / "g.yaml"
    g.write_text("template: nowhere.yaml\nname: g\ncountry: KZ\nelection_date: 2019-06-09\n")
    with pytest.raises(PlaybookError, match=r"g.yaml:1: template: no template 'nowhere.yaml'"):
        load_playbook(g)


def test_yaml_is_loaded_safely(tmp_path: Path):
    f = tmp_path / "evil.yaml"
    f.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(PlaybookError, match="not valid YAML"):
        load_playbook(f)


def test_cli_validate_and_show():
    runner = CliRunner()
    ok = runner.invoke(app, ["playbook", "validate", str(KZ_WATCH), str(REPO / "playbooks" / "rapid-response.yaml")])
    assert ok.exit_code == 0, ok.output
    shown = runner.invoke(app, ["playbook", "show", str(KZ_WATCH)])
    assert shown.exit_code == 0
    assert (
        "heightened" in shown.output
        and "2019-06-08T00:00:00+06:00" in shown.output
        and "UTC 2019-06-07T18:00:00Z" in shown.output
    )


def test_validate_a_directory_checks_its_watches_as_schedule_all_reads_them(tmp_path: Path):
    """`playbook validate playbooks/watches` said 'cannot read: Is a directory'."""
    d = tmp_path / "watches"
    d.mkdir()
    good = KZ_WATCH.read_text().replace(
        "template: rapid-response.yaml", f"template: {REPO / 'playbooks' / 'rapid-response.yaml'}"
    )
    (d / "kz.yaml").write_text(good)
    res = CliRunner().invoke(app, ["playbook", "validate", str(d)])
    assert res.exit_code == 0 and f"{d / 'kz.yaml'}: ok (watch kz-2019-presidential)" in res.output, res.output
    (d / "kz-copy.yaml").write_text(good)
    (d / "bad.yaml").write_text(
        good.replace("name: kz-2019-presidential", "name: kz-bad").replace("Asia/Almaty", "Asia/Almati")
    )
    res = CliRunner().invoke(app, ["playbook", "validate", str(d)])
    assert res.exit_code == 1
    assert f"{d / 'bad.yaml'}:" in res.output and "timezone: unknown time zone 'Asia/Almati'" in res.output
    assert f"{d / 'kz.yaml'}: watch kz-2019-presidential is also the name of {d / 'kz-copy.yaml'}" in res.output
    res = CliRunner().invoke(app, ["playbook", "validate", str(tmp_path / "empty")])
    assert res.exit_code == 1
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(app, ["playbook", "validate", str(tmp_path / "empty")])
    assert res.exit_code == 1 and "empty: no playbook files (*.yaml) in it" in res.output
