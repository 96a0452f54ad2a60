"""What every `pollwatch` command module shares: a clean error exit, console output, times, watches, options.

Nothing here imports another module of the CLI, so every command module can import it.
"""

from __future__ import annotations

import os
import json
from datetime import datetime
from typing import Annotated, Any, Optional

import typer

from pollwatch.sinks import terminal_safe

WatchArg = Annotated[str, typer.Argument(help="Watch file or name.")]
From = Annotated[Optional[str], typer.Option("--from", help="From this time (ISO 8601; a bare date is 00:00 UTC).")]
Until = Annotated[Optional[str], typer.Option("--until", help="Until this time, exclusive (ISO 8601).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


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


def quiet_prefect() -> None:
    """No telemetry, and Prefect's own logs at WARNING unless the user asked otherwise (call before importing flows)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # the first start of the ephemeral API migrates its database: give a slow or busy machine time
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def show_time(v: Any) -> Any:
    """A time as the audit log writes it, to the second (other values as they are)."""
    from pollwatch.audit import format_time

    return format_time(v)[:-8] + "Z" if isinstance(v, datetime) else v


def print_json(obj: Any) -> None:
    """Print JSON, times to the second."""
    typer.echo(
        json.dumps(
            obj, indent=2, default=lambda v: show_time(v) if isinstance(v, datetime) else str(v), ensure_ascii=False
        )
    )


def print_table(headers: list[str], rows: list[list[Any]], empty: str = "(none)") -> None:
    """Print rows as aligned columns (outside text made terminal-safe), or `empty` when there are none."""
    if not rows:
        typer.echo(empty)
        return
    cells = [[("-" if c is None else str(show_time(c))) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    typer.echo("  ".join("-" * w for w in widths))
    for r in cells:
        echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
