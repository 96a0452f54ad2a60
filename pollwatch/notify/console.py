"""The console: prints what Slack would show (the default when no Slack credentials are set)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO

from pollwatch.notify.render import Message
from pollwatch.notify.transports import Unthreaded, UploadRecord, log
from pollwatch.sinks import terminal_safe


class ConsoleTransport(Unthreaded):
    """Prints what Slack would show (the default when no Slack credentials are set); charts go to files."""

    name = "console"
    files = True  # charts are written to `chart_dir`

    def __init__(self, stream: IO[str] | None = None, chart_dir: Path | None = None):
        self.stream = stream or sys.stdout
        self.chart_dir = chart_dir
        self._n = 0

    def channel_id(self, channel: str) -> str:
        return channel

    def post(
        self, channel: str, msg: Message, *, thread_ts: str | None = None, broadcast: bool = False
    ) -> tuple[str, str]:
        self._n += 1
        where = f"{channel} (thread {thread_ts})" if thread_ts else channel
        self._write(f"--- {where} ---\n{msg.plain()}")
        return channel, f"{time.time():.6f}"

    def has_file(self, channel: str, thread_ts: str, filename: str, record: UploadRecord | None = None) -> bool:
        return False

    def upload(
        self, channel: str, thread_ts: str, filename: str, title: str, data: bytes, record: UploadRecord | None = None
    ) -> None:
        if self.chart_dir is None:
            return
        self.chart_dir.mkdir(parents=True, exist_ok=True)
        path = self.chart_dir / filename
        path.write_bytes(data)
        self._write(f"    chart: {path}")

    def _write(self, text: str) -> None:
        # written, not print()ed: inside a Prefect run with log_prints, print() becomes a log record
        text = terminal_safe(text)
        self.stream.write(text + "\n")
        self.stream.flush()
        log.info("%s", text)
