"""`pollwatch playbook validate|show`: check playbook files and show a watch's phases in local and UTC time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pollwatch.cli.common import echo, option_watch

app = typer.Typer(help="Validate and inspect playbooks and watches.", no_args_is_help=True)


@app.command("validate")
def playbook_validate(
    files: Annotated[
        list[Path], typer.Argument(help="Template or watch files, or directories of them (their *.yaml files).")
    ],
) -> None:
    """Check playbook files as the tick, show, schedule and report will read them;
    errors name the file, line and field. A directory is checked as `schedule-all` reads it: each *.yaml
    file, and no two watches of one name.
    """
    from pollwatch.playbook import PlaybookError, Watch, load_playbook

    bad = 0
    names: dict[tuple[Path, str], Path] = {}  # (directory, watch name): its first file
    for f, directory in _expand(files):
        try:
            pb = load_playbook(f)
            echo(f"{f}: ok ({type(pb).__name__.lower()} {pb.name})")
            for w in pb.warnings:
                echo(f"warning: {w}", err=True, fg=typer.colors.YELLOW)
        except PlaybookError as exc:
            bad += 1
            for p in exc.problems:
                echo(p, err=True, fg=typer.colors.RED)
            continue
        key = (directory, pb.name) if directory is not None else None
        if isinstance(pb, Watch) and key is not None and names.setdefault(key, f) != f:
            bad += 1  # schedule-all claims ticks by watch name: two files of one name would share their ticks
            echo(f"{f}: watch {pb.name} is also the name of {names[key]}", err=True, fg=typer.colors.RED)
    if bad:
        raise typer.Exit(1)


def _expand(paths: list[Path]) -> list[tuple[Path, Path | None]]:
    """(file, the directory it was found in) for each file to check: files as given (no directory: two variants of
    one watch may be checked side by side), a directory as its *.yaml files (exits when it has none)."""
    out: list[tuple[Path, Path | None]] = []
    for p in paths:
        if p.is_dir():
            found = sorted(p.glob("*.yaml"))
            if not found:
                echo(f"{p}: no playbook files (*.yaml) in it", err=True, fg=typer.colors.RED)
                raise typer.Exit(1)
            out += [(f, p) for f in found]
        else:
            out.append((p, None))
    return out


@app.command("show")
def playbook_show(
    file: Path,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a watch with its phases resolved to absolute times (local and UTC)."""
    from pollwatch.models import iso
    from pollwatch.timeutil import format_duration

    w = option_watch(str(file))
    phases = [
        {
            "phase": p.name,
            "start_local": p.start.astimezone(w.tz).isoformat(),
            "start_utc": iso(p.start),
            "end_local": p.end.astimezone(w.tz).isoformat(),
            "end_utc": iso(p.end),
            "cadence": format_duration(p.cadence),
            "ticks": len(p.ticks()),
        }
        for p in w.resolved_phases()
    ]
    milestones = {k: {"local": v.astimezone(w.tz).isoformat(), "utc": iso(v)} for k, v in w.milestone_times().items()}
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "watch": w.name,
                    "country": w.country,
                    "timezone": w.timezone,
                    "phases": phases,
                    "milestones": milestones,
                },
                indent=2,
            )
        )
        return
    typer.echo(f"{w.name}: {w.election or 'election'} in {w.country} on {w.election_date} ({w.timezone})")
    typer.echo(f"providers: {', '.join(f'{p.name} (AS{p.asn}, {p.type})' for p in w.providers) or '-'}")
    typer.echo(
        f"services: {', '.join(s.name for s in w.services) or '-'}; circumvention: "
        f"{', '.join(c.name for c in w.circumvention) or '-'}"
    )
    typer.echo("phases:")
    for p in phases:
        typer.echo(
            f"  {p['phase']:<12} {p['start_local']} -> {p['end_local']}  (UTC {p['start_utc']} -> {p['end_utc']})  "
            f"every {p['cadence']}, {p['ticks']} ticks"
        )
    typer.echo("milestones:")
    for k, v in milestones.items():
        typer.echo(f"  {k:<20} {v['local']}  (UTC {v['utc']})")
