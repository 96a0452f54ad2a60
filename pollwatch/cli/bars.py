"""Progress bars of the long commands: replay, demo, evaluate, simulate, report, observations import.

Drawn on stderr, and only when both standard output and standard error are terminals and --json
was not given: piped or captured output (scripts, CI, tests) and JSON stay as they were. The bar
is transient (it disappears when the work ends, leaving the command's own lines) and it hears
`pollwatch.progress.step()`, so a replay's stages or an evaluation's scenarios move it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pollwatch import progress


def on_terminal() -> bool:
    """Both outputs are terminals: someone is watching, and nothing reads the output as data."""
    return sys.stdout.isatty() and sys.stderr.isatty()


class Bar:
    """What a command tells its bar; does nothing when no bar is shown."""

    def __init__(self, title: str, rich_progress: Any = None, task: Any = None):
        self.title, self.rich_progress, self.task = title, rich_progress, task

    @property
    def shown(self) -> bool:
        return self.rich_progress is not None

    def __call__(self, what: str, done: int | None = None, total: int | None = None) -> None:
        """Now doing `what` (done of total, when counted): a `pollwatch.progress` listener."""
        if self.rich_progress is not None:
            count = f"{done}/{total}" if done is not None and total else ""
            self.rich_progress.update(
                self.task, description=f"{self.title}: {what}", completed=done or 0, total=total, count=count
            )

    def read(self, done: int, total: int) -> None:
        """Bytes read of a file (the import adapters' callback)."""
        if self.rich_progress is not None:
            self.rich_progress.update(self.task, completed=done, total=total)


@contextmanager
def progress_bar(title: str, *, as_json: bool = False, in_bytes: bool = False) -> Iterator[Bar]:
    """A bar on stderr while the block runs (on a terminal, without --json); yields what moves it."""
    if as_json or not on_terminal():
        yield Bar(title)
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    # "3/10" when counted, nothing while a stage is not (its bar pulses)
    counter = DownloadColumn() if in_bytes else TextColumn("{task.fields[count]}")
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        counter,
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as rich_progress:
        bar = Bar(title, rich_progress, rich_progress.add_task(title, total=None, count=""))
        with progress.listening(bar):
            yield bar
