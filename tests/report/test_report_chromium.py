"""The HTML report in headless Chromium: it loads offline without console errors and shows the incidents.

Needs the Debian packages chromium and chromium-driver (installed by .ci/run); skipped with a
reason elsewhere when the browser is missing, failed when CI=true.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pollwatch import report, store
from tests.fakes.reports import report_template, stored  # noqa: F401 (fixtures)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is required in CI (apt-get install chromium chromium-driver)")
    pytest.skip("chromium not installed (apt-get install chromium chromium-driver)")
    raise AssertionError  # unreachable


def load_in_chromium(page: Path, profile: Path) -> tuple[str, list[str]]:
    """Open `page` headless; return the DOM after load and every console message the page produced."""
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


def test_console_capture_sees_errors(tmp_path):
    """The harness itself: a page that logs an error and loads a remote image is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "script-src 'unsafe-inline'\"></head><body><img src='http://192.0.2.1/x.png'>"
        "<script>console.error('boom')</script></body></html>"
    )
    _, console = load_in_chromium(bad, tmp_path / "profile")
    assert any("boom" in c for c in console)
    assert any("Content Security Policy" in c for c in console)


def test_report_loads_without_errors_and_shows_incidents(stored, kz_watch, tmp_path):
    info = stored
    with store.session_scope() as s:
        data = report.collect(s, kz_watch, info["since"], info["until"])
    page = report.write_html(data, tmp_path / "report.html")
    dom, console = load_in_chromium(page, tmp_path / "profile")
    assert console == [], console
    shown = set(re.findall(r'data-incident-id="([0-9a-f]+)"', dom))
    assert shown == {i.id for i in info["incidents"]}
    assert re.search(r'<b id="incident-count">6</b>', dom)
    assert dom.count("<svg") >= 1 + len(data.series)
    assert "Nationwide internet outage" in dom and "Methodology and thresholds in force" in dom
