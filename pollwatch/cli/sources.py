"""`pollwatch fetch` and `pollwatch coverage`: the observatory sources from the command line.

Registered into the root app of `pollwatch.cli` as a nameless group, so both commands appear at
the top level.

    pollwatch fetch --source ioda --watch kz-2019-presidential --from 2019-06-09 --until 2019-06-10 --out kz.jsonl
    pollwatch coverage --watch kz-2019-presidential --from 2019-06-09
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer

from pollwatch.cli.common import fail, option_time, option_watch
from pollwatch.sinks import OutputError, terminal_safe, write_output

app = typer.Typer(no_args_is_help=True)


@app.command("fetch")
def fetch_cmd(
    source: Annotated[str, typer.Option("--source", "-s", help="ioda, ooni, ripestat or radar.")],
    watch: Annotated[str, typer.Option("--watch", "-w", help="Watch file or name.")],
    from_: Annotated[str, typer.Option("--from", help="Start (ISO 8601; a bare date is 00:00 UTC).")],
    until: Annotated[Optional[str], typer.Option("--until", help="End, exclusive (default: now).")] = None,
    base_url: Annotated[
        Optional[str], typer.Option("--base-url", help="API base URL (a mirror or a test server).")
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Write observations here as JSON Lines (default: stdout).")
    ] = None,
    records: Annotated[
        Optional[Path], typer.Option("--records", help="Write corroborating outage records here as JSON Lines.")
    ] = None,
    save: Annotated[
        bool, typer.Option("--store", help="Also upsert observations, gaps and notices into pollwatch's store.")
    ] = False,
) -> None:
    """Fetch one source's data for a watch and a time range (coordinators, replays of real history).

    Problems do not abort the fetch: they are reported as gaps and notices on stderr, and the
    exit code is 1 when the source reported an error.
    """
    from pollwatch.jsonl import write_observations
    from pollwatch.sources import SOURCES, make_source

    if source not in SOURCES:
        fail(f"--source: unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    w = option_watch(watch)
    start = option_time(from_, "--from")
    end = option_time(until, "--until") or datetime.now(timezone.utc)
    assert start is not None
    if end <= start:
        fail(f"--until ({end.isoformat()}) must be after --from ({start.isoformat()})")
    src = make_source(source, w, base_url=base_url)
    result = asyncio.run(src.collect(w, start, end))

    try:
        n = write_observations(result.observations, out if out is not None else sys.stdout)
        if records is not None:
            write_output(records, "".join(c.model_dump_json() + "\n" for c in result.corroborations))
    except OutputError as exc:
        fail(str(exc), 1)
    if save:
        from pollwatch import store

        from pollwatch import audit

        with store.session_scope() as s:
            store.upsert_observations(s, result.observations)
            audit.record_observations(
                s, watch=w.name, source=source, observations=result.observations, gaps=result.gaps, window=(start, end)
            )
            store.add_gaps(s, w.name, result.gaps)
            store.add_notices(s, result.notices)
    err = sys.stderr
    print(
        f"{source}: {n} observation(s){' -> ' + str(out) if out else ''}, {len(result.gaps)} gap(s), "
        f"{len(result.corroborations)} outage record(s), {result.requests} request(s) ({result.attempts} attempts) "
        f"in {result.seconds:.1f} s",
        file=err,
    )
    for notice in result.notices:
        print(terminal_safe(f"  [{notice.level.value}] {notice.message}"), file=err)
    for gap in result.gaps[:10]:
        print(
            terminal_safe(
                f"  gap {gap.entity} {gap.signal or ''} {gap.start:%Y-%m-%dT%H:%MZ}..{gap.end:%Y-%m-%dT%H:%MZ}: "
                f"{gap.reason}"
            ),
            file=err,
        )
    if len(result.gaps) > 10:
        print(f"  ... and {len(result.gaps) - 10} more gap(s)", file=err)
    if any(x.level.value == "error" for x in result.notices):
        raise typer.Exit(1)


@app.command("coverage")
def coverage_cmd(
    watch: Annotated[str, typer.Option("--watch", "-w", help="Watch file or name.")],
    from_: Annotated[
        Optional[str], typer.Option("--from", help="From this time (default: 7 days before --until).")
    ] = None,
    until: Annotated[
        Optional[str], typer.Option("--until", help="Until this time, exclusive (default: the newest observation).")
    ] = None,
    observations: Annotated[
        Optional[Path], typer.Option("--observations", help="Read a JSON Lines file instead of the store.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows instead of a table.")] = False,
) -> None:
    """Which providers, regions and services have data from which source, and the blind spots."""
    from pollwatch.jsonl import FormatError, read_observations
    from pollwatch.sources.coverage import blind_spots, coverage_report, render_table

    w = option_watch(watch)
    start, end = option_time(from_, "--from"), option_time(until, "--until")
    gaps = []
    if observations is not None:
        try:
            obs = read_observations(observations)
        except (FormatError, OSError) as exc:
            fail(str(exc))
    else:
        from pollwatch import store

        with store.session_scope() as s:
            obs = store.query_observations(s, country=w.country, since=start, until=end)
            gaps = store.list_gaps(s, w.name)
    if end is None:
        end = max((o.time for o in obs), default=datetime.now(timezone.utc)) + timedelta(seconds=1)
    if start is None:
        start = end - timedelta(days=7)
    obs = [o for o in obs if start <= o.time < end]
    gaps = [g for g in gaps if g.start < end and g.end > start]
    rows = coverage_report(w, obs, gaps)
    if as_json:
        typer.echo(json.dumps([{**r.model_dump(mode="json"), "share": round(r.share, 4)} for r in rows], indent=2))
        return
    typer.echo(
        f"coverage of {w.name} ({w.country}) from {start:%Y-%m-%dT%H:%MZ} to {end:%Y-%m-%dT%H:%MZ}: {len(obs)} "
        f"observation(s), {len(gaps)} gap(s)\n"
    )
    typer.echo(render_table(rows))
    spots = blind_spots(rows)
    typer.echo(f"\nblind spots ({len(spots)}):" if spots else "\nno blind spots")
    for line in spots:
        typer.echo(f"  - {line}")
