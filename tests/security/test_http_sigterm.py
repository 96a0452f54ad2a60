"""SIGTERM stops a tick that waits on a dripping server (issue #16: the tick stayed "running" and SIGTERM was ignored).

`pollwatch tick` runs in a subprocess against the session's Prefect API and the test's store, with
IODA (the real fake) dripping its answers a byte at a time and deadlines far away, so only the
signal can end it. After SIGTERM the process must exit promptly and non-zero, the tick's claim
must be released (the same tick can run again) and the operators told, through the failed-tick
path of flows/watch_tick.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from pollwatch import store
from tests.conftest import REPO
from tests.fakes.observatories import observatories
from tests.fakes.watches import kz_watch_yaml

T0 = datetime(2019, 6, 9, 6, 0, tzinfo=timezone.utc)


@pytest.mark.prefect
def test_sigterm_ends_a_tick_stuck_on_a_dripping_server(prefect_harness, tmp_path, isolated_store):
    from prefect.settings import PREFECT_API_URL

    with observatories() as obs:
        obs.ripestat.resources["KZ"] = {"asn": ["9198", "29355"], "ipv4": ["2.72.0.0/13"], "ipv6": []}
        obs.ioda.drip_interval = 1.0
        obs.ioda.fail("drip", path="/signals/raw")
        sources = {
            name: {"base_url": url, "retries": 0, "deadline": "10m"}
            for name, url in obs.base_urls().items()
            if name != "radar"
        }
        watch = tmp_path / "kz-sigterm.yaml"
        watch.write_text(kz_watch_yaml("kz-sigterm", fast=True, sources=sources, tick={"max_deadline": "10m"}))
        env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "pollwatch.cli", "tick", str(watch), "--at", T0.isoformat()],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            waited = time.monotonic()
            while not obs.ioda.paths("/signals/raw") and time.monotonic() - waited < 90:
                assert proc.poll() is None, proc.communicate()[0][-3000:]
                time.sleep(0.2)
            assert obs.ioda.paths("/signals/raw"), "the tick never reached IODA"
            time.sleep(1.0)  # the tick now waits on the drip
            with store.session_scope() as s:
                assert not store.claim_tick(s, "kz-sigterm", T0, "another-run")  # held by the stuck tick
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)
            stopped = time.monotonic() - signalled
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode != 0, out[-3000:]
    assert stopped < 30, stopped  # not the ten minutes the deadlines would allow
    with store.session_scope() as s:
        notices = [n for n in store.list_notices(s, "kz-sigterm") if n.source == "watch-tick" and n.level == "error"]
        assert store.claim_tick(s, "kz-sigterm", T0, "another-run")  # released: the tick can run again
    assert notices and "TerminationSignal" in notices[0].message, (notices, out[-3000:])
