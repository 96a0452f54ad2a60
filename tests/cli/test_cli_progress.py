"""Progress bars of the long commands: drawn on a terminal, absent when the output is piped or JSON."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

from pollwatch import progress
from pollwatch.cli import bars
from tests.conftest import KZ_WATCH, REPO

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="160", TERM="xterm")


def _on_terminal(args: list[str]) -> tuple[int, str]:
    """Run `pollwatch args` with its standard output and error on a pseudo-terminal; everything it wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pollwatch.cli", *args], stdin=slave, stdout=slave, stderr=slave, env=_env()
    )
    os.close(slave)
    out = b""
    try:
        while select.select([master], [], [], 120)[0]:
            chunk = os.read(master, 65536)
            if not chunk:
                break
            out += chunk
    except OSError:  # the child closed the terminal
        pass
    finally:
        os.close(master)
    return proc.wait(timeout=120), out.decode(errors="replace")


def test_simulate_draws_a_bar_on_a_terminal_and_none_when_piped(tmp_path: Path):
    args = ["simulate", str(KZ_WATCH), "--from", "2019-06-08", "--until", "2019-06-09", "--out"]
    code, seen = _on_terminal([*args, str(tmp_path / "a.jsonl")])
    assert code == 0, seen
    assert "simulate: kz-2019-presidential" in ESCAPES.sub("", seen)  # the stage, on the terminal
    assert (tmp_path / "a.jsonl").stat().st_size > 0

    piped = subprocess.run(
        [sys.executable, "-m", "pollwatch.cli", *args, str(tmp_path / "b.jsonl")],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == "" and "\x1b" not in piped.stdout
    assert piped.stdout.strip().endswith("injected events")


def test_report_json_on_a_terminal_is_json_only(tmp_path: Path):
    code, seen = _on_terminal(
        ["report", str(KZ_WATCH), "--from", "2019-06-09", "--until", "2019-06-10", "-o", str(tmp_path / "r.html")]
        + ["--json"]
    )
    assert code == 0, seen
    assert "\x1b" not in seen, "no bar, no cursor codes around JSON"
    assert json.loads(seen)["incidents"] == 0


def test_the_bar_hears_the_core_steps_only_while_shown(monkeypatch):
    heard = []
    with bars.progress_bar("evaluate") as bar:  # under pytest nothing is a terminal: no bar, nobody listens
        assert not bar.shown
        progress.step("clean week 1 of 2", 0, 2)
    monkeypatch.setattr(bars, "on_terminal", lambda: True)
    with bars.progress_bar("evaluate") as bar, progress.listening(lambda *a: heard.append(a)):
        progress.step("inner listener", 1, 2)  # the innermost listener hears it
    with bars.progress_bar("evaluate") as bar:
        assert bar.shown
        progress.step("clean week 2 of 2", 1, 2)
        task = bar.rich_progress.tasks[0]
        assert (task.description, task.completed, task.total) == ("evaluate: clean week 2 of 2", 1, 2)
        assert task.fields["count"] == "1/2"
    with bars.progress_bar("report", as_json=True) as bar:
        assert not bar.shown
    assert heard == [("inner listener", 1, 2)]
