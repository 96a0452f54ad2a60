"""Progress of long work (a replay's stages, an evaluation's scenarios, a report's charts), told to whoever listens.

Core code and flows call `step()`; nothing here prints. The CLI listens (`listening`) and draws a
progress bar on a terminal; everywhere else nobody listens and `step()` costs one look-up. A
context variable, not a parameter: Prefect flow parameters must be serialisable, and the flow
runs in the caller's context, so a listener set around `replay(...)` hears its stages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# what is being done now; how many of how many are done (None: not counted)
Listener = Callable[[str, "int | None", "int | None"], None]

_listener: ContextVar[Listener | None] = ContextVar("pollwatch_progress", default=None)


def step(what: str, done: int | None = None, total: int | None = None) -> None:
    """Tell the listener, if any, what is being done now (and how far along, when counted)."""
    listener = _listener.get()
    if listener is not None:
        listener(what, done, total)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send the progress of the work done inside the block to `listener`."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)
