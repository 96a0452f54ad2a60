"""`pollwatch brief`: draft the public statement from the incidents and evidence in the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pollwatch.cli.common import WatchArg, fail, option_time, option_watch

app = typer.Typer(no_args_is_help=True)


@app.command("brief")
def brief_cmd(
    watch: WatchArg,
    incident: Annotated[
        Optional[str], typer.Option("--incident", help="One incident (an id prefix is enough).")
    ] = None,
    since: Annotated[
        Optional[str],
        typer.Option("--from", help="Incidents overlapping from this time (default: the eve of election day)."),
    ] = None,
    until: Annotated[
        Optional[str], typer.Option("--until", help="...to this time (default: three days after election day).")
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="File to write (default: standard output, Markdown without charts)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="md or html.")] = "md",
) -> None:
    """Draft the public statement (headline, what, where, when, services, depth, how measured, likely cause, charts)
    from the incidents and evidence in the store: nothing invented, overrides win."""
    from pollwatch import brief, store
    from pollwatch.override import OverrideError

    if fmt not in ("md", "html"):
        fail(f"--format: expected md or html, got {fmt!r}")
    w = option_watch(watch)
    lo, hi = option_time(since, "--from"), option_time(until, "--until")
    if incident is None and (lo is None or hi is None):
        d_lo, d_hi = brief.default_range(w)
        lo, hi = lo or d_lo, hi or d_hi
    try:
        if out is None:
            with store.session_scope() as s:
                data = brief.collect(s, w, incident=incident, since=lo, until=hi)
            typer.echo(brief.render(data, fmt), nl=False)
            return
        data = brief.write_brief(w, out, fmt, incident=incident, since=lo, until=hi)
    except (OverrideError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"wrote {out}: {len(data.incidents)} incident(s)", err=True)
