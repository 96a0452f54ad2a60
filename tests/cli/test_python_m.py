"""`python -m pollwatch` runs the command line, as a new user tries when the `pollwatch` script is not on PATH."""

import subprocess
import sys
from pathlib import Path

from pollwatch import __version__

ROOT = Path(__file__).resolve().parent.parent.parent


def test_python_m_pollwatch_is_the_command_line():
    res = subprocess.run(
        [sys.executable, "-m", "pollwatch", "--version"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert __version__ in res.stdout


def test_version_needs_no_command():
    """`pollwatch --version` (in the root --help) said 'Missing command.' and exited 2."""
    from typer.testing import CliRunner

    from pollwatch.cli import app

    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output == f"pollwatch {__version__}\n", res.output
