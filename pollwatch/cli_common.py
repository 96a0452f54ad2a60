"""Option helpers every `pollwatch` command module shares: a clean error exit, console output, times, watches."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

import typer

from pollwatch.sinks import terminal_safe


def echo(message: object = "", *, err: bool = False, fg: Optional[str] = None) -> None:
    """Print text that may hold outside text (names, server errors): control and bidi characters removed."""
    typer.secho(terminal_safe(message), err=err, fg=fg)


def fail(message: str, code: int = 2) -> None:
    echo(message, err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def option_time(value: Optional[str], what: str) -> Optional[datetime]:
    """Parse a time option (ISO 8601); a bad one exits with a message naming the option."""
    if value is None:
        return None
    from pollwatch.timeutil import parse_time

    try:
        return parse_time(value)
    except ValueError as exc:
        fail(f"{what}: {exc}")
    return None


def option_watch(name: str):  # type: ignore[no-untyped-def]
    """Load a watch given by path or name; a bad one exits with the loader's file:line messages."""
    from pollwatch.playbook import PlaybookError, find_watch, load_watch

    try:
        return load_watch(find_watch(name))
    except PlaybookError as exc:
        fail(str(exc))
