"""`pollwatch demo`: election day in Kazakhstan (9-11 June 2019) as it was documented, through the real flows."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from pollwatch.cli.bars import progress_bar
from pollwatch.cli.common import echo, fail, option_watch, quiet_prefect

app = typer.Typer(no_args_is_help=True)


@app.command("demo")
def demo_cmd(
    incidents_json: Annotated[
        Optional[Path], typer.Option("--json", help="Write the incidents here (docs/formats.md).")
    ] = None,
    brief_out: Annotated[
        Optional[Path],
        typer.Option("--brief", help="Write the drafted public statement here (Markdown; .html for HTML)."),
    ] = None,
    workdir: Annotated[
        Optional[Path], typer.Option(help="Where to write the simulated observations (default: $POLLWATCH_HOME/demo).")
    ] = None,
    scenario: Annotated[
        Optional[Path], typer.Option(help="A documented day (default: playbooks/scenarios/kz-2019-election-day.yaml).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print the table only, not every alert.")] = False,
) -> None:
    """Tell election day in Kazakhstan (9-11 June 2019) as it was documented, through the real flows, with no setup.

    The observations are simulated around the documented times and scopes (the days before are the
    baseline); the replay runs the Prefect flows a live watch runs; the table at the end sets what
    the report documented against what pollwatch alerted, when, and how long after onset.
    Randomized scenarios: `pollwatch simulate`.
    """
    quiet_prefect()
    from pollwatch import demo
    from pollwatch.jsonl import write_observations
    from pollwatch.settings import get_settings

    t0 = time.monotonic()
    settings = get_settings()
    workdir = workdir or settings.home / "demo"
    obs_path = workdir / "observations.jsonl"
    with progress_bar("demo") as bar:
        try:
            day = demo.load_scenario(scenario or demo.DEFAULT_SCENARIO)
            w = option_watch(day.watch)
            bar(f"simulating {w.name} from {day.history_from:%d %b} to {day.until:%d %b}")
            sc = demo.simulate_day(w, day, seed=seed)
        except demo.ScenarioError as exc:
            fail(str(exc))
        bar(f"writing {len(sc.observations):,} observations")
        workdir.mkdir(parents=True, exist_ok=True)
        write_observations(sc.observations, obs_path)
    inc_path = incidents_json or workdir / "incidents.json"
    typer.secho(f"pollwatch demo: {w.election or w.name} in {w.country}, {w.election_date} ({w.timezone})", bold=True)
    typer.echo(f"documented by: {day.reference}")
    typer.echo(
        f"simulated {len(sc.observations)} observations from {day.history_from:%d %b %H:%M} UTC (baseline) "
        f"to {day.until:%d %b %H:%M} UTC -> {obs_path}"
    )
    typer.echo("replaying through the Prefect flows (ephemeral API, SQLite store, alerts to the console)...\n")

    with progress_bar("replay") as bar:
        bar("starting the Prefect flows")
        from pollwatch.flows.replay import replay

        result = replay(str(w.source_file), str(obs_path), day.replay_from, day.until, str(inc_path))
    incidents = result["incidents"]
    if not quiet:
        for text in result["alerts"]:
            echo(text + "\n")
    rows = demo.compare(w, day, incidents)
    typer.secho("what the report documented -> what pollwatch alerted", bold=True)
    typer.echo(demo.table(w, rows))
    bad = [r for r in rows if not r.ok]
    typer.echo(
        f"\n{len(incidents)} incidents; {sum(r.ok for r in rows)} of {len(day.events)} documented events alerted "
        "as documented, "
        f"{sum(r.event is None for r in rows)} alerts the report does not mention; incidents JSON: {inc_path}"
    )
    from pollwatch import store

    if brief_out is not None:
        from pollwatch import brief

        with store.using(store.REPLAY), progress_bar("drafting the statement"):
            brief.write_brief(
                w,
                brief_out,
                "html" if brief_out.suffix.lower() in (".html", ".htm") else "md",
                since=day.replay_from,
                until=day.until,
            )
        typer.echo(
            f"drafted statement: {brief_out} (`pollwatch --replay brief {w.name}` redrafts it from the replay store)"
        )
    with store.using(store.REPLAY):
        typer.echo(f"replay store (the live store is untouched): {store.database_url()}")
    typer.echo("run history: `prefect flow-run ls`; audit: `pollwatch --replay audit incidents`")
    typer.echo(f"done in {time.monotonic() - t0:.1f} s")
    if bad:
        raise typer.Exit(1)
