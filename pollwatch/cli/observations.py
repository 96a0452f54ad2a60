"""`pollwatch observations import|export`: observations in and out of the store (docs/formats.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pollwatch.cli.bars import progress_bar
from pollwatch.cli.common import fail, option_time, option_watch

app = typer.Typer(help="Import and export observations (JSON Lines, docs/formats.md).", no_args_is_help=True)


@app.command("import")
def observations_import(
    file: Path,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="jsonl, monash, responsive, ooni-raw, ooni-hourly or ioda-signals (docs/formats.md)."
        ),
    ] = "jsonl",
    watch: Annotated[
        Optional[str], typer.Option("--watch", help="Watch name or file: its country, time zone and providers.")
    ] = None,
    country: Annotated[
        Optional[str], typer.Option(help="ISO 3166-1 alpha-2 code (else the watch's or the file's).")
    ] = None,
    tz: Annotated[
        Optional[str], typer.Option("--tz", help="IANA time zone of local times (monash time_e; else the watch's).")
    ] = None,
    service: Annotated[
        Optional[str], typer.Option(help="Service the tests are about (OONI files; else the file's test_name).")
    ] = None,
    scale: Annotated[
        str, typer.Option(help="monash index scale: auto, 10 or 100 (0..10 indices are multiplied by 10).")
    ] = "auto",
) -> None:
    """Import observations into the store (idempotent: the same file twice stores each once), audited."""
    from pollwatch import audit, store
    from pollwatch.adapters import OBSERVATION_FORMATS, read_observations_as
    from pollwatch.jsonl import FormatError

    if fmt not in OBSERVATION_FORMATS:
        fail(f"--format: unknown format {fmt!r}; one of {', '.join(OBSERVATION_FORMATS)}")
    country = _option_country(country)
    _check_tz(tz)
    w = option_watch(watch) if watch else None
    with progress_bar(f"importing {file.name}", in_bytes=True) as bar:
        try:
            obs = read_observations_as(
                fmt, file, watch=w, country=country, tz=tz, service=service, scale=scale, progress=bar.read
            )
        except FileNotFoundError:
            fail(f"{file}: no such file")
        except FormatError as exc:
            fail(str(exc))
        bar(f"storing {len(obs):,} observations")
        tally: dict[str, int] = {}
        with store.session_scope() as s:
            store.upsert_observations(s, obs, tally=tally)
            audit.record_observation_batches(
                s, watch=None, observations=obs, requests=[f"pollwatch observations import {file.name}"]
            )
    new, changed = tally.get("new", 0), tally.get("changed", 0)
    text = f"{file}: {len(obs)} observations read, {new} new, {len(obs) - new - changed} already stored"
    if changed:
        text += f", {changed} stored with another value before (replaced by this file's)"
    typer.echo(text)


def _option_country(value: Optional[str]) -> Optional[str]:
    """--country as the ISO 3166-1 alpha-2 code every observation carries; exits naming the option otherwise."""
    import pycountry

    if value is None or pycountry.countries.get(alpha_2=value.strip().upper()) is not None:
        return value.strip().upper() if value else None
    try:  # a name or an alpha-3 code: say which code to write (never a fuzzy guess: 'ZZ' is not Italy)
        meant = pycountry.countries.lookup(value.strip()).alpha_2
    except LookupError:
        meant = None
    hint = f": write {meant!r}" if meant else " such as 'KZ'"
    fail(f"--country: unknown country {value!r}: expected an ISO 3166-1 alpha-2 code{hint}")
    return None


def _check_tz(value: Optional[str]) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        if value is not None:
            ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        fail(f"--tz: unknown time zone {value!r}: expected an IANA name such as 'Asia/Tehran'")


@app.command("export")
def observations_export(
    out: Annotated[Path, typer.Option("--out", help="JSON Lines file to write ('-': standard output).")],
    country: Annotated[Optional[str], typer.Option(help="ISO 3166-1 alpha-2 code.")] = None,
    since: Annotated[Optional[str], typer.Option("--from", help="ISO 8601 start (inclusive).")] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="ISO 8601 end (exclusive).")] = None,
) -> None:
    """Export stored observations as JSON Lines."""
    from pollwatch import store
    from pollwatch.jsonl import write_observations

    with store.session_scope() as s:
        obs = store.query_observations(
            s,
            country=country.upper() if country else None,
            since=option_time(since, "--from"),
            until=option_time(until, "--until"),
        )
    from pollwatch.sinks import OutputError

    if str(out) == "-":  # the lines on standard output, the count on standard error
        import sys

        n = write_observations(obs, sys.stdout)
        typer.echo(f"{n} observations written", err=True)
        return
    try:
        n = write_observations(obs, out)
    except OutputError as exc:
        fail(str(exc), 1)
    typer.echo(f"{out}: {n} observations written")
