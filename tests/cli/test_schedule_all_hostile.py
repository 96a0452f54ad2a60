"""`pollwatch schedule-all DIR` on a hostile directory: a `*.yaml` that is a FIFO or a symlink to /dev/zero, a YAML
bomb, a huge file, file names with line breaks and terminal escapes, thousands of broken files. Each is named as a
problem, in bounded time and memory, one line each; nothing is scheduled. Run as a separate process with a memory
and time limit: an unbounded read must fail the test, not the machine."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tests.fakes.world_watches import write_world_watches

REPO = Path(__file__).parents[2]
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{k}: &{k} [{', '.join([f'*{p}'] * 9)}]\n" for p, k in zip("abcdefg", "bcdefgh")
)


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 31, 1 << 31))  # 2 GiB: reading /dev/zero whole would pass it


def schedule_all(directory: Path, timeout: float = 60) -> tuple[int, str, float]:
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api", "PYTHONPATH": str(REPO)}
    began = time.monotonic()
    try:
        res = subprocess.run(
            [sys.executable, "-c", "from pollwatch.cli import app; app()", "schedule-all", str(directory), "--dry-run"],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=timeout,
            preexec_fn=_limits,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"schedule-all still reading after {timeout} s")
    return res.returncode, res.stdout + res.stderr, time.monotonic() - began


@pytest.fixture
def world(tmp_path: Path) -> Path:
    directory = tmp_path / "watches"
    write_world_watches(directory, 2, cadence=timedelta(minutes=1))
    return directory


def test_files_that_are_no_watch_are_named_and_never_read_without_end(world):
    os.mkfifo(world / "pipe.yaml")  # open() would wait for a writer
    (world / "zero.yaml").symlink_to("/dev/zero")  # its size says 0; reading it never ends
    (world / "dir.yaml").mkdir()
    (world / "bomb.yaml").write_text(BOMB)
    with open(world / "huge.yaml", "wb") as f:
        f.truncate(64 * 2**20)
    code, out, took = schedule_all(world)
    assert code == 2, out
    assert "5 problem(s), nothing scheduled" in out
    for name in ("pipe.yaml", "zero.yaml", "dir.yaml"):
        assert f"{world / name}: not a regular file" in out
    assert "expands to more than 100000 values" in out and "the file is larger than 1024 KB" in out
    assert "would deploy" not in out


def test_a_file_name_cannot_write_its_own_lines_or_escapes_to_the_terminal(world):
    evil = world / "x\n  world-zz.yaml: fine, scheduled\x1b]0;owned\x07\x1b[2J.yaml"
    evil.write_text("country: [\n")
    code, out, _ = schedule_all(world)
    assert code == 2, out
    assert "\x1b" not in out and "\x07" not in out
    assert not any(line.startswith("  world-zz.yaml") for line in out.splitlines())
    assert "x\\n  world-zz.yaml: fine" in out  # shown, on the line that names the problem


def test_thousands_of_broken_files_are_refused_in_bounded_time(tmp_path):
    directory = tmp_path / "many"
    directory.mkdir()
    for i in range(3000):
        (directory / f"w{i:04d}.yaml").write_text("country: [\n")
    code, out, took = schedule_all(directory)
    assert code == 2 and "3000 problem(s), nothing scheduled" in out
    assert took < 45, took


@pytest.mark.parametrize("kind", ["fifo", "dev_zero"])
def test_the_batch_flows_loader_refuses_them_too(tmp_path, kind):
    """flows/watches_tick.py loads each *.yaml of the directory with load_watch_cached (one broken file is that
    watch's failure only): a FIFO or a link to /dev/zero must be that failure, not a batch tick that never ends."""
    path = tmp_path / "w.yaml"
    os.mkfifo(path) if kind == "fifo" else path.symlink_to("/dev/zero")
    code = (
        "import sys\nfrom pollwatch.playbook import PlaybookError, load_watch_cached\n"
        f"try:\n    load_watch_cached({str(path)!r})\nexcept PlaybookError as exc:\n    print(exc)\n    sys.exit(3)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "POLLWATCH_HOME": str(tmp_path / "home")}
    try:
        res = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30, preexec_fn=_limits
        )
    except subprocess.TimeoutExpired:
        pytest.fail("load_watch_cached still reading after 30 s")
    assert res.returncode == 3 and "not a regular file" in res.stdout, res.stdout + res.stderr
