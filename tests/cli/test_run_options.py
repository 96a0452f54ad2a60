"""`pollwatch tick` and `simulate` check their options before running anything: a bad one names the option."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pollwatch.cli import app
from tests.conftest import KZ_WATCH


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--at", "tomorrow"], "--at: not an ISO 8601 time: 'tomorrow'"),
        (
            ["--at", "2019-06-09T05:00Z", "--observations", "nowhere.jsonl"],
            "--observations: nowhere.jsonl: no such file",
        ),
    ],
)
def test_tick_refuses_a_bad_option_without_a_failed_tick(
    options: list[str], said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Both read as 'the tick failed (...): its flow run is Failed', exit 1 (the second after a traceback)."""
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["tick", str(KZ_WATCH), *options])
    assert res.exit_code == 2, res.output
    assert res.output.strip() == said


def test_simulate_random_events_needs_a_number(tmp_path: Path):
    res = CliRunner().invoke(
        app, ["simulate", str(KZ_WATCH), "--out", str(tmp_path / "o.jsonl"), "--events", "random:x"]
    )
    assert (
        res.exit_code == 2 and "--events: expected 'election-day', 'none' or 'random:N', got 'random:x'" in res.output
    )
    assert not (tmp_path / "o.jsonl").exists()
