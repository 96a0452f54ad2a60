"""A Slack that answers a chart upload with hostile values (tests/fakes/slack_api.py, its files.getUploadURLExternal
answer rewritten): a file id that is the bot token echoed back, very long, with control characters or SQL, and an
upload URL carrying a credential in its query string. The alert still goes; neither the token nor the URL's
credential reaches the logs, the store or the delivery report; no control character reaches a log line; nothing
the store cannot keep (PostgreSQL's 64-character column) is given to it."""

from __future__ import annotations

import logging
import socketserver
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.notify.test_chart_once import TOKEN, deliver, fake, start_alert, store_rows, transport  # noqa: F401

from pollwatch import store

UPLOAD_SECRET = "upl0ad-s3cret-QUERY-value"
HOSTILE_IDS = {
    "token": TOKEN,
    "long": "F" + "A" * 5000,
    "control": "F0001\n2026-11-30 09:00:00 CRITICAL forged log line\x1b[2J\x07",
    "sql": "F1'); DROP TABLE upload; --",
    "empty": "",
}


def _hostile_upload(fake, file_id: str | None = None, query: str = "") -> None:  # noqa: F811
    real = fake._m_files_getUploadURLExternal

    def answer(p):
        status, body = real(p)
        if body.get("ok"):
            if file_id is not None:
                fake.files[file_id] = fake.files[body["file_id"]]  # the same upload under the hostile id
                body = {**body, "file_id": file_id}
            body = {**body, "upload_url": body["upload_url"] + query}
        return status, body

    fake._m_files_getUploadURLExternal = answer


def _stored_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("name", list(HOSTILE_IDS))
def test_a_hostile_file_id_is_neither_stored_nor_logged_and_the_alert_goes(
    kz_watch,
    fake,  # noqa: F811
    caplog,
    tmp_path,
    monkeypatch,
    request,
    name,
    backend,
):
    if backend == "postgresql":
        monkeypatch.setenv("POLLWATCH_DATABASE_URL", request.getfixturevalue("pg_url"))
    caplog.set_level(logging.DEBUG)
    start_alert(kz_watch)
    _hostile_upload(fake, HOSTILE_IDS[name])

    first = deliver(kz_watch, transport(fake))
    again = deliver(kz_watch, transport(fake))  # a new process, as after a killed worker

    assert first.ok and first.sent and again.ok, (first.errors, again.errors)
    assert all(r.state == "sent" for r in store_rows())
    with store.session_scope() as s:
        kept = [r.file_id for r in s.execute(select(store.UploadRow)).scalars()]
    assert kept == []  # nothing Slack could not have meant as a file id
    assert not fake.calls_to("files.completeUploadExternal")
    assert TOKEN not in caplog.text and TOKEN.encode() not in _stored_bytes(tmp_path)
    lines = [r.getMessage() for r in caplog.records]
    assert not any("\nforged" in m.replace("\n2026-11-30 09:00:00 CRITICAL ", "\nforged") or "\x1b" in m for m in lines)
    assert TOKEN not in f"{first.errors} {again.errors}"


def test_an_upload_urls_credential_is_never_logged_or_stored(kz_watch, fake, caplog, tmp_path):  # noqa: F811
    caplog.set_level(logging.DEBUG)  # slack_sdk logs request and response bodies at debug level
    start_alert(kz_watch)
    _hostile_upload(fake, query=f"?token={UPLOAD_SECRET}&sig={UPLOAD_SECRET}x")
    fake.fail("upload", "server_error", times=None)  # the bytes never get there: every error path is taken

    report = deliver(kz_watch, transport(fake))

    assert report.ok and report.sent, report.errors
    assert len(fake.calls_to("upload")) >= 1  # the URL was used
    assert UPLOAD_SECRET not in caplog.text
    assert UPLOAD_SECRET.encode() not in _stored_bytes(tmp_path)
    assert UPLOAD_SECRET not in str(report.errors)


def test_an_upload_url_that_is_not_http_is_not_opened(kz_watch, fake, tmp_path):  # noqa: F811
    """urllib would open file:// (and ftp://) URLs a hostile answer names; the chart's bytes go to HTTP(S) only."""
    start_alert(kz_watch)
    target = tmp_path / "not-for-charts"
    target.write_text("x")
    real = fake._m_files_getUploadURLExternal
    fake._m_files_getUploadURLExternal = lambda p: (lambda sb: (sb[0], {**sb[1], "upload_url": target.as_uri()}))(
        real(p)
    )
    opened = []
    import urllib.request

    monkey = urllib.request.FileHandler.file_open
    urllib.request.FileHandler.file_open = lambda self, req: opened.append(req.full_url) or monkey(self, req)
    try:
        report = deliver(kz_watch, transport(fake))
    finally:
        urllib.request.FileHandler.file_open = monkey
    assert report.ok and report.sent, report.errors
    assert opened == [] and not fake.calls_to("files.completeUploadExternal")


@pytest.mark.parametrize("method", ["files.info", "files.completeUploadExternal"])
def test_a_files_error_echoing_the_token_reaches_no_log_store_or_report(kz_watch, fake, caplog, tmp_path, method):  # noqa: F811
    """A retry in a new process asks files.info about the recorded upload, and completes it: Slack's error words
    quoting the bot token (raw, escaped or encoded) are scrubbed wherever they go."""
    caplog.set_level(logging.DEBUG)
    start_alert(kz_watch)
    fake.fail("files.completeUploadExternal", "server_error", times=None)  # the first process leaves the id
    first = deliver(kz_watch, transport(fake))
    fake.faults.clear()
    fake.fail(method, "echo", times=None)

    again = deliver(kz_watch, transport(fake))

    assert first.ok and again.ok, (first.errors, again.errors)
    assert len(fake.calls_to(method)) >= 1
    assert TOKEN not in caplog.text and TOKEN.encode() not in _stored_bytes(tmp_path)
    assert TOKEN not in f"{first.errors} {again.errors}"


def test_masking_upload_urls_in_the_sdks_log_takes_linear_time(caplog):
    """A body with an upload URL that never closes (backslashes, no quote) is logged at once (no backtracking)."""
    from pollwatch.notify.transports import sdk_logger

    caplog.set_level(logging.DEBUG)
    began = time.monotonic()
    sdk_logger().debug("body: %s", '{"upload_url": "' + "\\" * 100_000 + "x")
    sdk_logger().debug("body: %s", f'{{"upload_url": "https://files.example/u?token={UPLOAD_SECRET}", "ok": true}}')
    assert time.monotonic() - began < 1.0
    assert UPLOAD_SECRET not in caplog.text and '"upload_url": "***"' in caplog.text


@pytest.mark.parametrize("tail", ["?token={s}\r\nX-Injected: 1", "?token={s} &x=<script>", ":99999999/u?token={s}"])
def test_an_upload_url_urllib_refuses_is_not_quoted_in_logs(kz_watch, fake, caplog, tmp_path, tail):  # noqa: F811
    """urllib's own errors quote a URL it will not open (control characters, a bad port): that text is not logged."""
    caplog.set_level(logging.DEBUG)
    start_alert(kz_watch)
    real = fake._m_files_getUploadURLExternal

    def answer(p):
        status, body = real(p)
        url = body["upload_url"]
        if ":99999999" in tail:
            url = url.rsplit("/upload", 1)[0]
        return status, {**body, "upload_url": url + tail.format(s=UPLOAD_SECRET)}

    fake._m_files_getUploadURLExternal = answer
    report = deliver(kz_watch, transport(fake))
    assert report.ok and report.sent, report.errors
    assert UPLOAD_SECRET not in caplog.text and UPLOAD_SECRET not in str(report.errors)
    assert UPLOAD_SECRET.encode() not in _stored_bytes(tmp_path)


class _Drip(socketserver.ThreadingTCPServer):
    """An upload URL's server that takes the bytes, then answers one byte every 0.2 s (each wait is short)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.stop = threading.Event()
        super().__init__(("127.0.0.1", 0), self._Handler)

    class _Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(2)
            try:
                self.request.recv(65536)
                for b in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
                    if self.server.stop.is_set():
                        return
                    self.request.sendall(bytes([b]))
                    time.sleep(0.2)
            except OSError:
                pass


def test_an_upload_url_that_answers_a_byte_at_a_time_is_given_up_at_the_deadline(kz_watch, fake):  # noqa: F811
    start_alert(kz_watch)
    with _Drip() as drip:
        threading.Thread(target=drip.serve_forever, daemon=True).start()
        real = fake._m_files_getUploadURLExternal
        fake._m_files_getUploadURLExternal = lambda p: (
            lambda sb: (sb[0], {**sb[1], "upload_url": f"http://127.0.0.1:{drip.server_address[1]}/u"})
        )(real(p))
        t = transport(fake)
        t.upload_deadline = 1.0
        began = time.monotonic()
        report = deliver(kz_watch, t)
        took = time.monotonic() - began
        drip.stop.set()
        drip.shutdown()
    assert report.ok and report.sent, report.errors  # the alert goes; the chart is given up
    assert took < 6, took  # two attempts of 1 s (upload_retry_delays=(0.01,)), not the minutes the drip lasts
    assert not fake.calls_to("files.completeUploadExternal")
