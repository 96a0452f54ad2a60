"""`pip install .` (not editable) gives a pollwatch that works from any folder.

The wheel holds flows/, tasks/ and playbooks/ inside the package (pollwatch.flows, pollwatch.tasks,
pollwatch/playbooks/) and installs nothing with a generic top-level name; unpacked into a folder of its
own and run from another, it finds its playbooks, migrations and flows there, not in this checkout.
"""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # built from a copy: setuptools leaves build/ and *.egg-info/ in the folder it builds
    src = tmp_path_factory.mktemp("src") / "pollwatch"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("pollwatch-*.whl")
    return built


def test_the_wheel_installs_only_the_pollwatch_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"pollwatch"}
    for needed in (
        "pollwatch/flows/watch_tick.py",
        "pollwatch/tasks/collect.py",
        "pollwatch/playbooks/rapid-response.yaml",
        "pollwatch/playbooks/watches/kz-2019-presidential.yaml",
        "pollwatch/playbooks/scenarios/kz-2019-election-day.yaml",
        "pollwatch/migrations/env.py",
        "pollwatch/migrations/versions/0001_initial_schema.py",
        "pollwatch/report/templates/report.html.j2",
        "pollwatch/report/templates/report.css",
    ):
        assert needed in names, needed


def test_the_installed_package_runs_from_another_folder(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import pollwatch, pollwatch.playbook as p, pollwatch.flows.watch_tick as w, pollwatch.tasks.collect as c\n"
        "print(pollwatch.__file__); print(p.PLAYBOOKS_DIR); print(w.__file__); print(c.__file__)\n"
        "from pollwatch import store\n"
        "with store.session_scope() as s: pass\n"  # the store's migrations run from the installed package
        "from pollwatch.cli import main\n"
        "import sys; sys.argv = ['pollwatch', 'playbook', 'show', 'kz-2019-presidential', '--json']\n"
        "main()\n"
    )
    env = {"PYTHONPATH": str(site), "POLLWATCH_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    for line in lines[:4]:
        assert line.startswith(str(site)), f"{line} is not from the installed package"
    assert "kz-2019-presidential" in run.stdout and "polls_open" in run.stdout


def test_the_installed_report_renders_from_its_own_templates(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = (
        "from datetime import datetime, timezone\n"
        "from pollwatch.playbook import find_watch, load_watch\n"
        "from pollwatch.report import ReportData, render_html\n"
        "from pollwatch.report.html import environment\n"
        "print(environment().get_template('report.html.j2').filename)\n"
        "t = datetime(2019, 6, 9, tzinfo=timezone.utc)\n"
        "w = load_watch(find_watch('kz-2019-presidential'))\n"
        "print(len(render_html(ReportData(watch=w, since=t, until=t.replace(day=10), generated_at=t))))\n"
    )
    env = {"PYTHONPATH": str(site), "POLLWATCH_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    template, size = run.stdout.splitlines()
    assert template.startswith(str(site)) and int(size) > 1000
