"""Security: secrets never leak, YAML is loaded safely, no shell sees user input, probes stay on target.

The canary test sets canary tokens in POLLWATCH_SLACK_BOT_TOKEN and POLLWATCH_RADAR_API_TOKEN,
runs the flows (two live ticks that raise an alert, a replay, the report) and the Radar source
against a fake that echoes the Authorization header back in an error, then searches every output
for the canaries: log records, stdout/stderr, the SQLite files' bytes, every Prefect artifact and
flow-run log, every file written, the audit log, and the text of every exception raised.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pollwatch import store
from pollwatch.jsonl import write_observations
from pollwatch.playbook import PlaybookError, load_playbook
from pollwatch.simulate import election_day_events, simulate
from tests.conftest import KZ_WATCH, REPO

SLACK_CANARY = "xoxb-CANARY-5l4ck-7f3e9a1b2c"
RADAR_CANARY = "CANARY-r4d4r-0d8c6b4a29"
CANARIES = (SLACK_CANARY, RADAR_CANARY)


def _leaks(blob: bytes | str) -> list[str]:
    data = blob.encode("utf-8", "replace") if isinstance(blob, str) else blob
    return [c for c in CANARIES if c.encode() in data]


# --- canary tokens through the flows ---------------------------------------------------------------


@pytest.mark.usefixtures("prefect_harness")
def test_canary_secrets_appear_in_no_output(kz_watch, tmp_path, monkeypatch, caplog, capfd, isolated_store):
    from prefect.client.orchestration import get_client

    from pollwatch.flows.replay import replay
    from pollwatch.flows.watch_tick import watch_tick

    monkeypatch.setenv("POLLWATCH_SLACK_BOT_TOKEN", SLACK_CANARY)
    monkeypatch.setenv("POLLWATCH_RADAR_API_TOKEN", RADAR_CANARY)
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    w = kz_watch
    nationwide = [e for e in election_day_events(w) if e.kind.value == "nationwide_outage"]
    start = nationwide[0].start
    sc = simulate(w, start - timedelta(hours=26), start + timedelta(minutes=10), nationwide, seed=5)
    obs = tmp_path / "obs.jsonl"
    write_observations(sc.observations, obs)

    # a local fake Slack for the token to go to, if the notify stage uses Slack (never the internet)
    slack = None
    try:
        from tests.fakes.slack_api import FakeSlack

        slack = FakeSlack().start()
        monkeypatch.setenv("POLLWATCH_SLACK_BASE_URL", slack.base_url)
    except ImportError:
        pass
    try:
        for tick in (start - timedelta(minutes=5), start):
            try:
                watch_tick(str(KZ_WATCH), tick, str(obs))
            except Exception as exc:  # noqa: BLE001 - failures are searched for canaries too
                errors.append(exc)
        try:
            replay(
                str(KZ_WATCH),
                str(obs),
                start - timedelta(minutes=5),
                start + timedelta(minutes=10),
                str(tmp_path / "incidents.json"),
            )
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        try:
            from pollwatch.flows.report import report

            report(str(KZ_WATCH), start - timedelta(hours=1), start + timedelta(hours=1), str(tmp_path / "report.html"))
        except ImportError:
            pass
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
    finally:
        if slack is not None:
            slack.stop()

    # the Radar source with the canary token, against a fake that echoes the Authorization header back
    try:
        from pollwatch.models import NoticeLevel
        from pollwatch.sources import make_source
        from tests.fakes.observatories import RadarFake, Sleeps, fast_config

        with RadarFake(token=RADAR_CANARY) as radar:
            radar.fail("echo_auth")
            src = make_source("radar", w, config=fast_config(radar.url, retries=0), sleep=Sleeps())
            assert RADAR_CANARY not in repr(src)
            res = asyncio.run(src.collect(w, start - timedelta(hours=1), start))
            assert [n for n in res.notices if n.level in (NoticeLevel.warning, NoticeLevel.error)]
            with store.session_scope() as s:
                store.add_notices(s, res.notices)
                store.add_gaps(s, w.name, res.gaps)
            assert not _leaks(res.model_dump_json()), "Radar result carries the token"
    except ImportError:
        pass

    # every output, searched
    out, err = capfd.readouterr()
    found = {
        "stdout": _leaks(out),
        "stderr": _leaks(err),
        "log records": _leaks(caplog.text),
        "exceptions": _leaks(" ".join(f"{type(e).__name__}: {e!r} {e}" for e in errors)),
    }
    store.dispose_engines()
    home = Path(isolated_store.split("///", 1)[1]).parent
    for f in [*home.rglob("*"), *tmp_path.rglob("*")]:
        if f.is_file():
            found[str(f)] = _leaks(f.read_bytes())

    async def prefect_outputs() -> str:
        async with get_client() as client:
            artifacts = await client.read_artifacts()
            runs = await client.read_flow_runs()
            logs = await client.read_logs()
        return "\n".join(
            [
                *(a.model_dump_json() for a in artifacts),
                *(r.model_dump_json() for r in runs),
                *(lg.model_dump_json() for lg in logs),
            ]
        )

    found["prefect artifacts, runs and logs"] = _leaks(asyncio.run(prefect_outputs()))
    with store.session_scope() as s:
        from pollwatch import audit

        found["audit log"] = _leaks(" ".join(e.model_dump_json() for e in audit.entries(s)))
    leaks = {where: what for where, what in found.items() if what}
    assert not leaks, f"secrets leaked: {leaks}"
    assert not [e for e in errors if "Radar" not in str(e)], errors  # the flows themselves ran


def test_settings_never_print_their_secrets(monkeypatch):
    from pollwatch.settings import get_settings

    monkeypatch.setenv("POLLWATCH_SLACK_BOT_TOKEN", SLACK_CANARY)
    monkeypatch.setenv("POLLWATCH_RADAR_API_TOKEN", RADAR_CANARY)
    s = get_settings()
    assert s.slack_bot_token.get_secret_value() == SLACK_CANARY
    for text in (repr(s), str(s), s.model_dump_json(), str(s.model_dump())):
        assert not _leaks(text)


# --- YAML -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
        "!!python/name:os.system",
    ],
)
def test_yaml_tags_that_would_run_code_are_refused(tmp_path, payload):
    marker = tmp_path / "pwned"
    watch = tmp_path / "evil.yaml"
    watch.write_text(
        "template: rapid-response.yaml\nname: evil\ncountry: KZ\nelection_date: 2019-06-09\n"
        f"description: {payload.format(marker=marker)}\n"
    )
    with pytest.raises(PlaybookError):
        load_playbook(watch)
    assert not marker.exists()


def test_a_yaml_bomb_is_refused_or_bounded(tmp_path):
    bomb = "a: &a ['x','x','x','x','x','x','x','x','x']\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
        f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
        for i in range(8)
    )
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb)
    with pytest.raises(PlaybookError):  # unknown keys: refused without expanding 9**9 items into memory
        load_playbook(path)


# --- no shell, no unsafe loaders ---------------------------------------------------------------------

CODE_DIRS = ("pollwatch", "tasks", "flows", "bench")
FORBIDDEN = {
    r"shell\s*=\s*True": "a shell interprets its command line",
    r"\bos\.system\s*\(": "runs a shell",
    r"\bos\.popen\s*\(": "runs a shell",
    r"subprocess\.getoutput|subprocess\.getstatusoutput": "runs a shell",
    r"yaml\.load\s*\((?![^)]*SafeLoader)": "yaml.load without the safe loader",
    r"yaml\.unsafe_load|yaml\.full_load|Loader\s*=\s*yaml\.(?:Unsafe|Full)?Loader\b": "an unsafe YAML loader",
    r"\bpickle\.loads?\s*\(": "unpickling runs code",
    r"(?<![\w.])eval\s*\(|(?<![\w.])exec\s*\(": "evaluates text as code",
}


def test_no_shell_or_unsafe_loader_in_the_code():
    hits = []
    for d in CODE_DIRS:
        for f in sorted((REPO / d).rglob("*.py")):
            text = f.read_text(encoding="utf-8")
            for pattern, why in FORBIDDEN.items():
                for m in re.finditer(pattern, text):
                    line = text.count("\n", 0, m.start()) + 1
                    hits.append(f"{f.relative_to(REPO)}:{line}: {m.group(0)!r} ({why})")
    assert not hits, "\n".join(hits)


# --- probes go only to the watch's configured targets ------------------------------------------------


class _Redirector(BaseHTTPRequestHandler):
    """Answers every request with a redirect to a host that is not in the watch."""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(302)
        self.send_header("Location", "http://elsewhere.invalid:9/steal")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a) -> None:
        pass


def test_web_probes_touch_only_the_configured_targets(monkeypatch):
    from pollwatch.playbook import Service
    from pollwatch.probes import webprobe
    from pollwatch.probes.webprobe import probe

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    resolved, connected = [], []
    real_resolve, real_connect = probe._resolve, probe._connect

    async def resolve(host, ctx, result):
        resolved.append(host)
        return await real_resolve(host, ctx, result)

    async def connect(address, port_, ctx, result):
        connected.append((address, port_))
        return await real_connect(address, port_, ctx, result)

    monkeypatch.setattr(probe, "_resolve", resolve)
    monkeypatch.setattr(probe, "_connect", connect)
    services = [
        Service(name="redirecting", urls=[f"http://127.0.0.1:{port}/"]),
        Service(name="closed", urls=["http://127.0.0.1:9/"]),
    ]
    try:
        opts = webprobe.WebprobeOptions(step_timeout=0.5, attempts=2, bogon_exempt=["127.0.0.0/8"])
        results = asyncio.run(webprobe.run_webprobes(services, opts, resolver="127.0.0.1:9"))
    finally:
        server.shutdown()
    assert len(results) == 4
    assert set(resolved) <= {"127.0.0.1"}
    assert set(connected) <= {("127.0.0.1", port), ("127.0.0.1", 9)}  # the redirect is not followed
