"""Secrets a server echoes, in any encoding, reach no output (issue #16: the Radar token leaked through notices).

Canary credentials go to hostile servers on 127.0.0.1 (tests/fakes: the four observatories' fakes
and the fake Slack, each answering in its API's own error shape with the credential quoted raw,
URL-encoded, JSON-escaped, as HTML entities, base64, inside a Basic credential and as hex). The
real source clients, a real watch tick under Prefect and the real Slack transports handle the
answers; then every sink is searched for every form of every canary (tests/fakes/hostile.leaks):
notices, gaps, outage records, alerts, the audit log and every other table of pollwatch's store
(SQLite and PostgreSQL), Prefect's database file, logs, artifacts and runs, stdout/stderr and log
records, the HTML report, the #KeepItOn CSV, and the bodies Slack received.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import MetaData, create_engine, select
from typer.testing import CliRunner

from pollwatch import outbox, redact, store
from pollwatch.sources import make_source
from tests.fakes.hostile import echo_text, encodings, leaks
from tests.fakes.observatories import (
    IodaFake,
    OoniFake,
    RadarFake,
    RipestatFake,
    Sleeps,
    fast_config,
    ioda_event,
    observatories,
)
from tests.fakes.slack_api import FakeSlack
from tests.fakes.watches import kz_watch_yaml

RADAR_CANARY = "CANARY-r4d4r/t0k3n+0d8c6b4a29"  # '/' and '+' make URL and JSON encodings differ from the raw text
SLACK_CANARY = "xoxb-CANARY-5l4ck-7f3e9a1b2c"
HOOK_SECRET = "T0CANARY1/B0CANARY2/w3bh00kCANARYs3cr3tp4th"
CANARIES = (RADAR_CANARY, SLACK_CANARY, HOOK_SECRET.rsplit("/", 1)[-1])
T0 = datetime(2019, 6, 9, 6, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def registered():
    redact.register(RADAR_CANARY, SLACK_CANARY, f"http://127.0.0.1:1/services/{HOOK_SECRET}")


# --- the registry itself ----------------------------------------------------------------------------


@pytest.mark.parametrize("form", sorted(encodings(RADAR_CANARY)))
@pytest.mark.parametrize("size", [0, 200_000])  # a short error text, and a long body (found by needles, then matched)
def test_scrub_removes_every_encoding(form, size):
    padding = "x" * size
    for canary in CANARIES:
        text = f"{padding}error: {encodings(canary)[form]} was refused{padding}"
        out = redact.scrub(text)
        assert not leaks(out, CANARIES), (form, out[size : size + 300])
        assert out.startswith(padding + "error: ") and out.endswith(" was refused" + padding)
        assert redact.found_in(text.encode()) and redact.found_in(text)


def test_a_webhook_urls_path_and_secret_segment_are_secrets_too():
    url = f"https://hooks.example.net/services/{HOOK_SECRET}"
    reg = redact.Registry()
    reg.register(SecretStr(url))
    for text in (
        url,
        f"no route for /services/{HOOK_SECRET}",
        "bad segment w3bh00kCANARYs3cr3tp4th",
        url.replace("/", "%2F"),
    ):
        assert "CANARY" not in reg.scrub(text)
    assert reg.scrub("the services are fine") == "the services are fine"


# Secrets as real credentials look (printable ASCII, with at least a few characters no encoder escapes),
# in any encoding, anywhere in any text: never left in the scrubbed text; text without one is left alone.
SECRET = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=8, max_size=48).filter(
    lambda s: any(len(run) >= 4 for run in "".join(c if c.isalnum() else " " for c in s).split())
)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    secret=SECRET, before=TEXT, after=TEXT, form=st.sampled_from(sorted(encodings("x" * 8))), repeat=st.integers(1, 300)
)
def test_property_no_encoding_survives(secret, before, after, form, repeat):
    reg = redact.Registry()
    reg.register(secret)
    text = (before + encodings(secret)[form] + after) * repeat  # long texts take the needle path
    assert not leaks(reg.scrub(text), [secret])
    assert reg.found_in(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=100, deadline=None)
@given(secret=SECRET, text=TEXT)
def test_property_text_without_secrets_is_unchanged(secret, text):
    reg = redact.Registry()
    reg.register(secret)
    if not leaks(text, [secret]) and "xox" not in text and "hooks.slack.com" not in text:
        assert reg.scrub(text) == text


# --- each source client against its hostile server ---------------------------------------------------


def _collect(name: str, fake, watch, **kw):
    src = make_source(name, watch, config=fast_config(fake.url, retries=0), sleep=Sleeps(), **kw)
    return asyncio.run(src.collect(watch, T0 - timedelta(hours=1), T0))


@pytest.mark.parametrize("status", [200, 400])
@pytest.mark.parametrize(
    "name,fake_cls", [("ioda", IodaFake), ("ooni", OoniFake), ("ripestat", RipestatFake), ("radar", RadarFake)]
)
def test_a_source_that_echoes_canaries_leaks_none(name, fake_cls, status, kz_watch):
    kw = {"token": RADAR_CANARY} if name == "radar" else {}
    with fake_cls(token=RADAR_CANARY) if name == "radar" else fake_cls() as fake:
        fake.echo_status, fake.echo_secrets = status, [] if name == "radar" else list(CANARIES)
        fake.fail("echo")
        res = _collect(name, fake, kz_watch, **kw)
        if name == "radar":
            assert fake.requests and fake.requests[0].headers["Authorization"] == f"Bearer {RADAR_CANARY}"
    dumped = res.model_dump_json()
    assert res.gaps and [n for n in res.notices if n.level != "info"], dumped[:500]
    assert not leaks(dumped, CANARIES), dumped[:2000]
    # (IODA's 400 envelope quotes its metadata first; the error is past the snippet)
    if status == 200 or name != "ioda":
        assert "***" in " ".join(n.message for n in res.notices)  # the server's words are kept, less the secrets


def test_canaries_inside_good_data_are_scrubbed_from_the_records(kz_watch):
    with IodaFake() as ioda:
        ioda.events.append(
            {
                **ioda_event("country", "KZ", T0 - timedelta(minutes=50), T0 - timedelta(minutes=10)),
                "location_name": echo_text(list(CANARIES)),
            }
        )
        res = _collect("ioda", ioda, kz_watch)
    events = [c for c in res.corroborations if c.kind == "ioda_event"]
    assert events and "***" in (events[0].description or "")
    assert not leaks(res.model_dump_json(), CANARIES)


# --- the Slack transports ---------------------------------------------------------------------------


def test_slack_echoing_the_token_or_the_webhook_leaks_nothing(kz_watch, caplog):
    from pollwatch.notify import DeliveryError, SlackTransport, WebhookTransport, deliver_outbox
    from pollwatch.notify.render import Message
    from tests.fakes.slack_scenarios import alerts_for, nationwide, story

    caplog.set_level(logging.DEBUG)
    with FakeSlack(token=SLACK_CANARY, webhook_secret=HOOK_SECRET) as fake:
        fake.fail("chat.postMessage", "echo", times=2)  # the message, then its text-only fallback
        with store.session_scope() as s:
            outbox.enqueue_alerts(s, alerts_for(kz_watch, story(nationwide(kz_watch), updates=1)))
        slack = SlackTransport(SecretStr(SLACK_CANARY), base_url=fake.base_url, timeout=1, pace=0.0)
        report = deliver_outbox(kz_watch, slack, chart=lambda *a: None, retry_delays=(0.01,))
        assert report.errors and "***" in " ".join(report.errors.values())
        ops = fake.roots("pollwatch-ops")
        assert ops and "Slack delivery fails" in ops[0]["text"]  # the operators are told, without the token
        fake.fail("webhook", "echo", times=1)
        hook = WebhookTransport(SecretStr(fake.webhook_url), timeout=1, pace=0.0)
        with pytest.raises(DeliveryError) as err:
            hook.post("#pollwatch-kz", Message(text="hello"))
        bodies = json.dumps([c.params for c in fake.calls])
    with store.session_scope() as s:
        stored = json.dumps([a.model_dump(mode="json") for a in store.list_alerts(s, kz_watch.name)])
    found = {
        "report": leaks(json.dumps(report.errors), CANARIES),
        "webhook error": leaks(str(err.value), CANARIES),
        "requests to Slack": leaks(bodies, CANARIES),
        "outbox": leaks(stored, CANARIES),
        "log records": leaks(caplog.text, CANARIES),
    }
    assert not {k: v for k, v in found.items() if v}, found


# --- a real tick: every sink searched --------------------------------------------------------------

WATCH_YAML = kz_watch_yaml("kz-hostile", fast=True, radar=True)  # every source enabled, no retries


def database_text(url: str) -> str:
    """Every row of every table of a database, as text."""
    engine = create_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return "\n".join(repr(row) for t in meta.sorted_tables for row in conn.execute(select(t)))
    finally:
        engine.dispose()


@pytest.mark.prefect
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_tick_against_hostile_servers_leaks_no_canary_anywhere(
    backend, request, prefect_harness, tmp_path, monkeypatch, caplog, capfd, isolated_store
):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    from pollwatch.flows.watch_tick import watch_tick
    from pollwatch import audit
    from pollwatch.cli import app

    url = request.getfixturevalue("pg_url") if backend == "postgresql" else isolated_store
    monkeypatch.setenv("POLLWATCH_DATABASE_URL", url)
    monkeypatch.setenv("POLLWATCH_RADAR_API_TOKEN", RADAR_CANARY)
    monkeypatch.setenv("POLLWATCH_SLACK_BOT_TOKEN", SLACK_CANARY)
    caplog.set_level(logging.DEBUG)
    watch_file = tmp_path / "kz-hostile.yaml"
    watch_file.write_text(WATCH_YAML)
    with observatories(radar_token=RADAR_CANARY) as obs, FakeSlack(token=SLACK_CANARY) as slack:
        monkeypatch.setenv("POLLWATCH_SLACK_BASE_URL", slack.base_url)
        obs.ripestat.resources["KZ"] = {"asn": ["9198", "29355"], "ipv4": ["2.72.0.0/13"], "ipv6": []}
        obs.radar.fail("echo")  # Cloudflare's 200 {"success": false, "errors": [{"message": "... Bearer <token>"}]}
        for fake, status, path in (
            (obs.ioda, 200, "/signals/raw/asn"),
            (obs.ooni, 400, ""),
            (obs.ripestat, 200, "/data/country-resource-stats"),
        ):
            fake.echo_status, fake.echo_secrets = status, list(CANARIES)
            fake.fail("echo", path=path)
        obs.ioda.events.append(
            {
                **ioda_event("country", "KZ", T0 - timedelta(minutes=50), T0 - timedelta(minutes=10)),
                "location_name": echo_text(list(CANARIES)),
            }
        )
        slack.fail("chat.postMessage", "echo", times=1)
        result = watch_tick(str(watch_file), T0, None, obs.base_urls())
        slack_bodies = json.dumps([c.params for c in slack.calls])
        posted = json.dumps(slack.messages)
    assert result["skipped"] is False and result["sources"]["radar"]["gaps"] == 2
    with store.session_scope(url) as s:
        notices = store.list_notices(s, "kz-hostile")
        log = " ".join(e.model_dump_json() for e in audit.entries(s))
    radar_notice = next(n.message for n in notices if n.source == "radar")
    # the reason is kept, the token is not
    assert "Cloudflare reported failure" in radar_notice and "***" in radar_notice
    assert "***" in slack_bodies  # the ops channel was told about the echoing servers, with the secrets masked
    runner = CliRunner()
    html, csv = tmp_path / "report.html", tmp_path / "keepiton.csv"
    cli = [
        runner.invoke(
            app,
            ["report", str(watch_file), "--from", "2019-06-09T00:00Z", "--until", "2019-06-09T07:00Z", "-o", str(html)],
        ),
        runner.invoke(
            app,
            ["export", "keepiton", str(watch_file), "--from", "2019-06-08", "--until", "2019-06-10", "-o", str(csv)],
        ),
        runner.invoke(app, ["audit", "log", "kz-hostile"]),
    ]
    assert html.is_file() and csv.is_file(), [r.output for r in cli]

    async def prefect_outputs() -> str:
        async with get_client() as client:
            parts = [
                *(a.model_dump_json() for a in await client.read_artifacts()),
                *(r.model_dump_json() for r in await client.read_flow_runs()),
                *(t.model_dump_json() for t in await client.read_task_runs()),
                *(lg.model_dump_json() for lg in await client.read_logs()),
            ]
        return "\n".join(parts)

    out, err = capfd.readouterr()
    store.dispose_engines()
    prefect_db = Path(PREFECT_API_DATABASE_CONNECTION_URL.value().split("///", 1)[1])
    found = {
        "notices, gaps, alerts, audit, every table": leaks(database_text(url), CANARIES),
        "audit log": leaks(log, CANARIES),
        "Slack request bodies": leaks(slack_bodies, CANARIES),
        "Slack messages": leaks(posted, CANARIES),
        "stdout": leaks(out, CANARIES),
        "stderr": leaks(err, CANARIES),
        "log records": leaks(caplog.text, CANARIES),
        "CLI output": leaks(" ".join(r.output for r in cli), CANARIES),
        "Prefect API (artifacts, runs, task runs, logs)": leaks(asyncio.run(prefect_outputs()), CANARIES),
        "tick result": leaks(json.dumps(result, default=str), CANARIES),
    }
    for f in [*prefect_db.parent.glob(prefect_db.name + "*"), *tmp_path.rglob("*")]:
        if f.is_file():
            found[str(f)] = leaks(f.read_bytes(), CANARIES)
    leaked = {where: what for where, what in found.items() if what}
    assert not leaked, f"secrets leaked: {leaked}"
