"""`pollwatch evaluate`: replay labeled scenarios (simulated, and real when available) and score detection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def evaluate_cmd(
    watch: str = typer.Option("kz-2019-presidential", "--watch", help="Watch the simulated scenarios use."),
    scenarios: int = typer.Option(6, "--scenarios", help="Simulated scenarios with events."),
    events: int = typer.Option(10, "--events", help="Random events per scenario (all kinds, 12 h apart)."),
    clean_weeks: int = typer.Option(2, "--clean-weeks", help="Event-free simulated weeks (false alerts)."),
    seed: int = typer.Option(100, "--seed"),
    hard: bool = typer.Option(False, "--hard", help="Partial outages and blocks, milder throttling, 3 % missing points."),
    real: Optional[Path] = typer.Option(None, "--real", help="Real data folder (default ../shared/data/real when it exists)."),
    no_real: bool = typer.Option(False, "--no-real", help="Skip the real data."),
    out: Optional[Path] = typer.Option(None, "--json", help="Write every figure as JSON here."),
) -> None:
    """Replay labeled scenarios; print recall, precision, false alerts per watch-week, time to detect, kind and cause accuracy."""
    from pollwatch.evaluate import clean_suite, default_real_root, generated_suite, real_suite, scenario_line, summarize
    from pollwatch.playbook import PlaybookError, find_watch, load_watch

    try:
        w = load_watch(find_watch(watch))
    except PlaybookError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(2)
    typer.secho(f"generated suite{' (hard)' if hard else ''}: {scenarios} scenario(s) x {events} events, {clean_weeks} clean week(s),"
                f" watch {w.name}", bold=True)
    results = generated_suite(w, scenarios=scenarios, events=events, seed=seed, hard=hard) if scenarios and events else []
    results += clean_suite(w, weeks=clean_weeks, seed=seed + 400) if clean_weeks else []
    for r in results:
        typer.echo(scenario_line(r))
    overall = summarize(results)
    typer.secho("overall (generated):", bold=True)
    for k, v in overall.items():
        if k != "by_kind":
            typer.echo(f"  {k}: {v}")
    for kind, figures in overall["by_kind"].items():
        typer.echo(f"  {kind:<20} " + "  ".join(f"{k} {v}" for k, v in figures.items()))
    report: dict = {"generated": {"scenarios": [r.model_dump(mode="json") for r in results], "overall": overall}}
    root = real or default_real_root()
    if not no_real and root is not None and root.is_dir():
        typer.secho(f"real data: {root}", bold=True)
        real_results = real_suite(root)
        for r in real_results:
            typer.echo(scenario_line(r))
            for label_id, extra in r.extra.items():
                for k, v in extra.items():
                    if isinstance(v, list):
                        typer.echo(f"    {k}: {len(v)}")
                        for item in v:
                            typer.echo(f"      - {item}")
                    else:
                        typer.echo(f"    {k}: {v}")
        report["real"] = {"scenarios": [r.model_dump(mode="json") for r in real_results], "overall": summarize(real_results)}
    elif not no_real:
        typer.echo(f"real data: {root or '../shared/data/real'} not found, skipped")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str))
        typer.echo(f"figures written to {out}")
