"""`pollwatch simulate`, `replay` and `tick`: make observations, replay them through the flows, run one tick.

Registered into the root app as a nameless group, so the commands appear at the top level. The
flows are imported inside the commands that run them (after `quiet_prefect()`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from pollwatch.cli.bars import progress_bar
from pollwatch.cli.common import WatchArg, echo, fail, option_time, option_watch, quiet_prefect

app = typer.Typer(no_args_is_help=True)


@app.command("simulate")
def simulate_cmd(
    watch: WatchArg,
    out: Annotated[Path, typer.Option("--out", help="Observations JSON Lines to write.")],
    labels: Annotated[Optional[Path], typer.Option("--labels", help="Ground-truth labels JSON to write.")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    since: Annotated[Optional[str], typer.Option("--from", help="Start (default: 3 days before election day).")] = None,
    until: Annotated[
        Optional[str], typer.Option("--until", help="End (default: the morning after election day).")
    ] = None,
    events: Annotated[
        str, typer.Option(help="'election-day' (one event of every kind), 'none', or 'random:N'.")
    ] = "election-day",
) -> None:
    """Generate realistic observations for a watch, with injected events and their labels."""
    from pollwatch.jsonl import write_observations
    from pollwatch.simulate import demo_range, election_day_events, random_events, simulate
    from pollwatch.sinks import OutputError, write_output

    w = option_watch(watch)
    h0, _, d1 = demo_range(w)
    start, end = option_time(since, "--from") or h0, option_time(until, "--until") or d1
    if events == "election-day":
        specs = election_day_events(w)
    elif events == "none":
        specs = []
    elif events.startswith("random:") and events.split(":", 1)[1].strip().isdigit():
        specs = random_events(w, start, end, int(events.split(":", 1)[1]), seed)
    else:
        fail(f"--events: expected 'election-day', 'none' or 'random:N', got {events!r}")
    with progress_bar("simulate") as bar:
        bar(f"{w.name}, {start:%d %b %H:%M} to {end:%d %b %H:%M} UTC, {len(specs)} events")
        sc = simulate(w, start, end, specs, seed=seed)
        bar(f"writing {len(sc.observations):,} observations")
        try:
            write_observations(sc.observations, out)
            if labels:
                write_output(labels, json.dumps([lb.to_public() for lb in sc.labels], indent=2))
        except OutputError as exc:
            fail(str(exc), 1)
    typer.echo(f"{out}: {len(sc.observations)} observations, {len(sc.labels)} injected events")


@app.command("replay")
def replay_cmd(
    watch: WatchArg,
    observations: Annotated[Path, typer.Option("--observations", help="Observations JSON Lines.")],
    since: Annotated[Optional[str], typer.Option("--from")] = None,
    until: Annotated[Optional[str], typer.Option("--until")] = None,
    incidents_json: Annotated[Optional[Path], typer.Option("--json", help="Write the incidents as JSON here.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Do not print the alerts.")] = False,
) -> None:
    """Replay a watch over past observations through the real flows; print the alerts it would send."""
    from contextlib import nullcontext

    quiet_prefect()
    from pollwatch.flows.replay import replay
    from pollwatch.sinks import OutputError, make_parent, output_file

    w = option_watch(watch)
    if not observations.is_file():
        fail(f"{observations}: no such file")
    start, end = option_time(since, "--from"), option_time(until, "--until")  # before the --json file is opened
    if start is not None and end is not None and end <= start:
        fail(f"--until ({until}) must be after --from ({since})")
    try:  # the output is opened before the replay: a path that cannot be written fails at once, in one line
        if incidents_json:
            make_parent(incidents_json)
        with output_file(incidents_json) if incidents_json else nullcontext() as fh, progress_bar("replay") as bar:
            bar("starting the Prefect flows")
            result = replay(str(w.source_file), str(observations), start, end)
            if fh is not None:
                fh.write(json.dumps(result["incidents"], indent=2))
    except OutputError as exc:
        fail(str(exc), 1)
    incidents = result["incidents"]
    if result.get("ticks") == 0:  # a range outside the file's data: say so, not just '0 incident(s)'
        lo, hi = result["range"]
        first, last = result["data"]
        echo(
            f"warning: nothing replayed: no tick from {lo} to {hi}; {observations} holds observations from {first} "
            f"to {last}",
            err=True,
            fg=typer.colors.YELLOW,
        )
    if not quiet:
        for text in result["alerts"]:
            echo(text + "\n")
    typer.echo(
        f"{len(incidents)} incident(s)"
        + (f" written to {incidents_json}" if incidents_json else "")
        + f"; in the replay store (live views never show them): `pollwatch --replay report {w.name}`"
    )


@app.command("tick")
def tick_cmd(
    watch: WatchArg,
    at: Annotated[Optional[str], typer.Option("--at", help="Scheduled time of the tick (default: now).")] = None,
    observations: Annotated[
        Optional[Path], typer.Option("--observations", help="Collect from this JSON Lines file.")
    ] = None,
) -> None:
    """Run one watch tick now (what a deployment runs on its schedule).

    Exit code 0: the tick ran (or had already run); 1: it failed (its flow run is Failed, the operators were told,
    and the same command runs it again); 3: it ran but every source failed (no new data: gaps, no verdict).
    """
    quiet_prefect()
    from pollwatch.flows.watch_tick import watch_tick

    w = option_watch(watch)
    when = option_time(at, "--at")  # a bad option exits here, before any flow run (it read as a failed tick)
    if observations is not None and not observations.is_file():
        fail(f"--observations: {observations}: no such file")
    try:
        result = watch_tick(str(w.source_file), when, str(observations) if observations else None)
    except Exception as exc:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:400]
        fail(
            f"{w.name}: the tick failed ({reason}); its flow run is Failed and the tick is released: run the same "
            "command again "
            "once the cause is fixed",
            code=1,
        )
    typer.echo(json.dumps(result))
    sources = result.get("sources") or {}
    if sources and all(v.get("observations", 0) == 0 and v.get("gaps", 0) > 0 for v in sources.values()):
        fail(
            f"{w.name}: every source failed this tick ({', '.join(sorted(sources))}): recorded as data gaps, "
            "nothing judged; "
            "see the operator notices",
            code=3,
        )
