"""`pollwatch audit ...`, `pollwatch report` and `pollwatch export keepiton` from the command line."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from typer.testing import CliRunner

from pollwatch import store
from pollwatch.cli import app
from tests.fakes.reports import report_template, stored  # noqa: F401 (fixtures)

runner = CliRunner()


def run(*args: str, code: int = 0):
    res = runner.invoke(app, list(args))
    assert res.exit_code == code, (res.exit_code, res.output, res.exception)
    return res.output


def test_verify_passes_then_names_the_tampered_entry(stored, tmp_path):
    out = run("audit", "verify")
    assert out.startswith("audit log OK:")
    head = tmp_path / "head.json"
    run("audit", "export-head", str(head))
    assert json.loads(head.read_text())["seq"] > 5
    assert "reaches the exported head" in run("audit", "verify", "--head", str(head))
    with store.get_engine().begin() as conn:
        conn.exec_driver_sql("UPDATE audit_entry SET payload = '{\"forged\": true}' WHERE seq = 5")
    out = run("audit", "verify", code=1)
    assert "BROKEN at entry 5 (altered)" in out
    doc = json.loads(run("audit", "verify", "--json", code=1))
    assert doc["ok"] is False and doc["first_problem"]["seq"] == 5


def test_verify_with_head_catches_a_cut_end(stored, tmp_path):
    head = tmp_path / "head.json"
    run("audit", "export-head", str(head))
    with store.get_engine().begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_entry WHERE seq > (SELECT MAX(seq) - 3 FROM audit_entry)")
    run("audit", "verify")
    out = run("audit", "verify", "--head", str(head), code=1)
    assert "(truncated)" in out and "3 entries were cut" in out
    assert "not a head file" in run("audit", "verify", "--head", __file__, code=2)


def test_runs_incidents_alerts_tables_and_json(stored):
    out = run("audit", "runs")
    assert "run-1" in out and "replay" in out and "Completed" in out
    runs = json.loads(run("audit", "runs", "--json", "--watch", "kz-2019-presidential"))
    assert runs[0]["flow_run_id"] == "run-1" and runs[0]["pollwatch_version"]
    assert json.loads(run("audit", "runs", "--json", "--watch", "other")) == []

    out = run("audit", "incidents")
    for inc in stored["incidents"]:
        assert inc.id in out
    rows = json.loads(run("audit", "incidents", "--json"))
    assert len(rows) == 6 and all(
        r["decisions"] == 1 and r["alerts_queued"] == 2 and r["alerts_sent"] == 2 for r in rows
    )
    assert sum(r["overrides"] for r in rows) == 1
    # the range filter is on the incident's own window
    day = stored["day"]
    only = json.loads(
        run(
            "audit", "incidents", "--json", "--from", day.isoformat(), "--until", (day + timedelta(hours=4)).isoformat()
        )
    )
    assert {r["kind"] for r in only} <= {"circumvention_block", "service_block", "regional_outage"} and only

    alerts = json.loads(run("audit", "alerts", "--json"))
    assert len(alerts) == 24 and {a["action"] for a in alerts} == {"queued", "sent"}
    assert any(a["channel"] == "C123" and a["ts"] == "1560060000.000100" for a in alerts)
    assert "C123" in run("audit", "alerts", "--incident", stored["incidents"][0].id)
    run("audit", "alerts", "--from", "not-a-time", code=2)


def test_show_incident_timeline(stored):
    inc = stored["incidents"][0]
    out = run("audit", "show", inc.id)
    assert "anomaly opened" in out and "incident opened" in out and "alert sent" in out and "override by alice" in out
    assert "observations from ioda" in out  # the batch that covered the onset
    doc = json.loads(run("audit", "show", inc.id, "--json"))
    kinds = [e["kind"] for e in doc["timeline"]]
    assert kinds[0] == "observations" and "anomaly" in kinds and "override" in kinds
    assert doc["incident"]["id"] == inc.id
    assert "no incident" in run("audit", "show", "nope", code=1)
    # the prefix an alert's reader copies, as `override` and `brief --incident` take it (it said 'no incident')
    assert run("audit", "show", inc.id[:6]) == out


def test_report_and_keepiton_export(stored, tmp_path):
    since, until = stored["since"].isoformat(), stored["until"].isoformat()
    html = tmp_path / "r.html"
    out = run("report", "kz-2019-presidential", "--from", since, "--until", until, "-o", str(html))
    assert "6 incidents" in out and "intact" in out and html.exists()
    csv_path = tmp_path / "k.csv"
    run("export", "keepiton", "kz-2019-presidential", "-o", str(csv_path))
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 6
    text = run("export", "keepiton", "kz-2019-presidential", "--shutdowns-only")
    assert {r["pollwatch_cause"] for r in csv.DictReader(io.StringIO(text))} == {"government_directed"}
    # both files are on record with their hashes, and the chain still verifies
    with store.session_scope() as s:
        from pollwatch import audit

        reports = audit.entries(s, kind="report")
        assert [e.subject for e in reports] == ["html-report", "keepiton-csv"]
        assert audit.verify(s).ok
    run("report", "no-such-watch", code=2)
    # without a range: the watch's heightened phase (E-1d .. E+3d), which holds election day
    doc = json.loads(run("report", "kz-2019-presidential", "-o", str(tmp_path / "d.html"), "--json"))
    assert doc["incidents"] == 6 and doc["path"].endswith("d.html")
    assert "must be after" in run("report", "kz-2019-presidential", "--from", until, "--until", since, code=2)


def test_override_is_saved_and_logged(stored):
    inc = stored["incidents"][1]
    out = run("override", inc.id, "--cause", "cable_cut", "--who", "bob", "--why", "operator confirmed a cut")
    assert "cable_cut" in out
    with store.session_scope() as s:
        saved = store.get_incident(s, inc.id)
    assert saved.cause.value == "cable_cut" and saved.override["by"] == "bob"
    shown = run("audit", "show", inc.id)
    assert "override by bob: operator confirmed a cut" in shown
    assert run("audit", "verify").startswith("audit log OK")
    assert "unknown cause" in run("override", inc.id, "--cause", "aliens", "--who", "x", "--why", "y", code=2)
    assert "no incident" in run("override", "nope", "--cause", "technical", "--who", "x", "--why", "y", code=1)
    assert "needs who" in run("override", inc.id, "--cause", "technical", "--who", " ", "--why", "y", code=2)


def test_verify_data_catches_tables_changed_behind_the_log(stored):
    out = run("audit", "verify")  # the tables are checked by default
    assert "checked: the outbox and incident tables against the log" in out
    assert "checked: the observation table" in out
    inc = stored["incidents"][0]
    run("override", inc.id, "--cause", "technical", "--who", "carol", "--why", "utility report")
    run("audit", "verify", "--data")  # an override through pollwatch keeps table and log in step (--data: old scripts)
    with store.get_engine().begin() as conn:
        conn.exec_driver_sql("UPDATE alert SET text = 'nothing happened' WHERE id = (SELECT MIN(id) FROM alert)")
        conn.exec_driver_sql(f"UPDATE incident SET cause = 'unknown' WHERE id = '{inc.id}'")
    out = run("audit", "verify", code=1)
    assert "its text in the outbox differs" in out and f"incident {inc.id}: cause 'unknown'" in out
    out = run("audit", "verify", "--chain-only")  # the chain itself is untouched, and it says what it skipped
    assert out.startswith("audit log OK") and "NOT checked: the alert, incident and observation tables" in out


def test_log_and_check_file(stored, tmp_path):
    out = run("audit", "log", "--kind", "override")
    assert "override by alice" in out
    entries = json.loads(run("audit", "log", "--json", "--last", "0"))
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert len(json.loads(run("audit", "log", "--json", "--last", "3"))) == 3
    html = tmp_path / "r.html"
    run("report", "kz-2019-presidential", "-o", str(html))
    assert "matches entry" in run("audit", "check-file", str(html))
    html.write_text(html.read_text().replace("Kazakhtelecom", "Kazakhtelekom"))
    assert "matches no report" in run("audit", "check-file", str(html), code=1)
