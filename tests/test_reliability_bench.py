"""bench/run_all.py collects every benchmark's RESULT lines into one table, and notices the ones that fail."""

from __future__ import annotations

import importlib.util
import sys

from tests.conftest import REPO


def _run_all():
    spec = importlib.util.spec_from_file_location("bench_run_all", REPO / "bench" / "run_all.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_run_all"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_result_lines_are_parsed():
    mod = _run_all()
    text = (
        "noise\nRESULT name=soak_days figure=14.00 goal=>=14 met=yes\n  RESULT name=x figure=1.5 goal=<2 "
        "met=no  \nRESULTS nothing"
    )
    assert mod.parse_results(text) == [
        {"name": "soak_days", "figure": "14.00", "goal": ">=14", "met": "yes"},
        {"name": "x", "figure": "1.5", "goal": "<2", "met": "no"},
    ]


def test_a_benchmark_that_fails_or_hangs_is_reported(tmp_path):
    mod = _run_all()
    ok = tmp_path / "ok.py"
    ok.write_text("print('RESULT name=ok figure=1 goal=1 met=yes')\n")
    broken = tmp_path / "broken.py"
    broken.write_text("print('RESULT name=half figure=1 goal=2 met=no')\nraise SystemExit(3)\n")
    slow = tmp_path / "slow.py"
    slow.write_text("import time\ntime.sleep(30)\n")
    assert mod.run_one(ok, 60, [])[:2] == ([{"name": "ok", "figure": "1", "goal": "1", "met": "yes"}], "ok")
    rows, status, _ = mod.run_one(broken, 60, [])
    assert rows[0]["name"] == "half" and status.startswith("failed (rc 3)")
    assert mod.run_one(slow, 0.5, [])[1] == "timeout"
    assert (
        "name" in mod.table([["a", "1", "2", "yes", "b"]], ["name", "figure", "goal", "met", "bench"]).splitlines()[0]
    )


def test_a_benchmark_that_needs_longer_says_so_and_gets_it(tmp_path):
    """bench/world.py runs Prefect workers for about half an hour: run_all gives it its own RUN_ALL_TIMEOUT rather
    than cutting it off at the default 600 s and reporting a timeout."""
    mod = _run_all()
    long = tmp_path / "long.py"
    long.write_text("RUN_ALL_TIMEOUT = 2400  # why\nprint('RESULT name=x figure=1 goal=1 met=yes')\n")
    plain = tmp_path / "plain.py"
    plain.write_text("TIMEOUT = 5\n")
    assert mod.own_timeout(long, 600) == 2400 and mod.own_timeout(long, 3600) == 3600
    assert mod.own_timeout(plain, 600) == 600
    assert mod.own_timeout(REPO / "bench" / "world.py", 600) >= 2400
