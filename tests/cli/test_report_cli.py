"""`pollwatch report` on a store with nothing measured in the range says so: an empty page is not a quiet election."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from typer.testing import CliRunner

from pollwatch import store
from pollwatch.cli import app
from pollwatch.models import Observation
from tests.conftest import KZ_WATCH


def test_a_report_with_nothing_measured_warns_and_points_at_the_replay_store(tmp_path: Path):
    """After `pollwatch demo`, `pollwatch report kz-2019-presidential` (the live store) wrote an empty page silently."""
    res = CliRunner().invoke(app, ["report", str(KZ_WATCH), "-o", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    assert "warning: the store has no observation of kz-2019-presidential from 2019-06-07T18:00:00Z" in res.stderr
    assert "pollwatch --replay report kz-2019-presidential" in res.stderr
    with store.session_scope() as s:
        at = datetime(2019, 6, 9, 5, tzinfo=timezone.utc)
        store.upsert_observations(s, [Observation(time=at, source="ioda", signal="bgp", country="KZ", value=1.0)])
    res = CliRunner().invoke(app, ["report", str(KZ_WATCH), "-o", str(tmp_path / "r2.html")])
    assert res.exit_code == 0 and "warning" not in res.stderr, res.output
