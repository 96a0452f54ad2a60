"""`pollwatch schedule / unschedule / serve / pause / resume`: a watch's phases as Prefect deployments;
`schedule-all / unschedule-all`: every watch of a directory as batched lanes of the watches-tick flow.

Pure planning (`--dry-run`) needs no Prefect; the other commands talk to the Prefect API that
PREFECT_API_URL names (the ephemeral one when unset) through `flows/scheduling.py`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from pollwatch.cli.common import WatchArg, echo, fail, option_watch, quiet_prefect

if TYPE_CHECKING:
    from pollwatch.playbook import Watch

app = typer.Typer()


def _watch_name(watch: str) -> str:
    """A watch file or name gives its name; a bare name that is not a file is taken as it is (it may be gone)."""
    from pollwatch.playbook import PlaybookError, find_watch, load_watch

    try:
        return load_watch(find_watch(watch)).name
    except PlaybookError:
        if Path(watch).suffix in (".yaml", ".yml"):
            fail(f"{watch}: no such watch file")
        return watch


def _playbook_changed(how: str, previous: str, now: str | None) -> None:
    typer.secho(
        f"playbook changed since it was last {how} ({previous[:12]} -> {(now or '')[:12]}); recorded",
        fg=typer.colors.YELLOW,
    )


@app.command("schedule")
def schedule_cmd(
    watch: WatchArg,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the schedule; change nothing.")] = False,
    work_pool: Annotated[
        str, typer.Option("--work-pool", help="Work pool that runs the ticks (created as a process pool if missing).")
    ] = "pollwatch-analysis",
    observations: Annotated[
        Optional[Path], typer.Option("--observations", help="Ticks collect from this JSON Lines file (demos, tests).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the schedule as JSON.")] = False,
) -> None:
    """Create or update one Prefect deployment per phase of the watch, each bounded to its window."""
    from pollwatch.schedule import describe, phase_schedules

    w = option_watch(watch)
    for warning in w.warnings:  # as `playbook validate` says them: phases already over, withdrawn region codes
        echo(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    specs = phase_schedules(w)
    rows = describe(w, specs)
    if as_json:
        typer.echo(json.dumps({"watch": w.name, "timezone": w.timezone, "phases": rows}, indent=2))
    else:
        typer.echo(f"{w.name}: {len(rows)} phase deployment(s) of flow watch-tick, time zone {w.timezone}")
        for r in rows:
            typer.echo(
                f"  {r['phase']:<12} every {r['cadence']:<5} {r['ticks']:>6} ticks  "
                f"first {r['first_local']} ({r['first_utc']})  last {r['last_local']} ({r['last_utc']})"
            )
            for rule in r["rules"]:
                typer.echo(f"      [{rule['timezone']}, {rule['ticks']} ticks] " + rule["rrule"].replace("\n", " "))
    if dry_run:
        return
    quiet_prefect()
    from pollwatch.flows.scheduling import apply_schedule

    result = apply_schedule(w, work_pool=work_pool, observations=str(observations) if observations else None)
    if result.work_pool_created:
        typer.echo(f"created process work pool {work_pool}; start a worker: prefect worker start --pool {work_pool}")
    if result.previous_hash:
        _playbook_changed("scheduled", result.previous_hash, w.content_hash)
    typer.echo(f"created {result.created or '-'}, updated {result.updated or '-'}, removed {result.removed or '-'}")
    if result.vantages:
        typer.echo(f"vantage probes deployed: {', '.join(result.vantages)} (start a worker on each vantage's pool)")


@app.command("unschedule")
def unschedule_cmd(
    watch: WatchArg,
) -> None:
    """Delete the watch's deployments (its recorded ticks, incidents and alerts stay)."""
    name = _watch_name(watch)
    quiet_prefect()
    from pollwatch.flows.scheduling import remove_schedule

    removed = remove_schedule(name)
    typer.echo(f"{name}: removed {', '.join(removed) if removed else 'nothing (no deployments)'}")


def _pause(watch: str, paused: bool) -> None:
    name = _watch_name(watch)
    quiet_prefect()
    from pollwatch.flows.scheduling import set_paused

    names = set_paused(name, paused)
    if not names:
        fail(f"{name}: no deployments; schedule it first with `pollwatch schedule`", code=1)
    typer.echo(f"{name}: {'paused' if paused else 'resumed'} {', '.join(names)}")


@app.command("pause")
def pause_cmd(
    watch: WatchArg,
) -> None:
    """Pause a watch: no ticks run until it is resumed (the next tick then catches up)."""
    _pause(watch, True)


@app.command("resume")
def resume_cmd(
    watch: WatchArg,
) -> None:
    """Resume a paused watch."""
    _pause(watch, False)


@app.command("serve")
def serve_cmd(
    watch: WatchArg,
    observations: Annotated[
        Optional[Path], typer.Option("--observations", help="Ticks collect from this JSON Lines file.")
    ] = None,
    grace: Annotated[
        float, typer.Option("--grace", min=0, help="On SIGTERM/SIGINT, seconds a tick in progress may take to finish.")
    ] = 60.0,
    slack_actions: Annotated[
        bool,
        typer.Option(
            "--slack-actions/--no-slack-actions",
            help="Also receive responders' Slack buttons over Socket Mode when an app-level token "
            "(POLLWATCH_SLACK_APP_TOKEN or Secret block slack-app-token) is set.",
        ),
    ] = True,
) -> None:
    """Serve the watch's phase deployments from this one long-lived process (no work pool or worker needed).

    Stop it with SIGTERM or Ctrl-C: no new tick starts, a tick in progress finishes (up to
    --grace seconds), the deployments are paused until the next `serve` or `schedule`, exit 0.
    With an app-level token configured it also receives responders' Slack buttons (Socket Mode).
    """
    from datetime import datetime, timezone

    from pollwatch.schedule import phase_schedules

    w = option_watch(watch)
    specs = phase_schedules(w)
    last = max((s.last_tick for s in specs if s.last_tick), default=None)
    if last is None or last < datetime.now(timezone.utc):
        typer.echo(
            f"{w.name}: no ticks left to serve (the last phase ended {last.isoformat() if last else 'before it began'})"
        )
        return
    quiet_prefect()
    from pollwatch.flows.serve import Served, serve_watch

    def announce(served: Served) -> None:
        if served.removed:
            typer.echo(f"removed deployments of phases the watch no longer has: {', '.join(served.removed)}")
        if served.previous_hash:
            _playbook_changed("applied", served.previous_hash, w.content_hash)
        for name, pool in served.from_pools.items():
            typer.secho(
                f"{name} was run by the workers of pool {pool}; replaced by a deployment this process runs "
                "(`pollwatch schedule` hands it back to the pool)",
                fg=typer.colors.YELLOW,
            )
        state = "paused (`pollwatch resume` to start ticking)" if served.paused else "ticking"
        typer.echo(
            f"{w.name}: serving {', '.join(served.deployments)}, {state}"
            + ("; no Prefect server configured: this process schedules the runs" if served.embedded_scheduler else "")
        )
        typer.echo("stop with Ctrl-C or SIGTERM: a tick in progress finishes first")

    listener = None
    if slack_actions:
        from prefect.settings import PREFECT_API_URL

        from pollwatch.cli.slack import start_actions

        try:  # Secret blocks only from a configured server (without one, asking would start a temporary API)
            listener = start_actions(blocks=bool(PREFECT_API_URL.value()), required=False)
        except (ValueError, OSError) as exc:
            typer.secho(f"Slack actions not received: {exc}", err=True, fg=typer.colors.YELLOW)
        if listener is not None:
            typer.echo("receiving responders' Slack actions over Socket Mode")
    try:
        serve_watch(w, observations=str(observations) if observations else None, grace=grace, announce=announce)
    finally:
        if listener is not None:
            listener.stop()
    typer.echo(f"{w.name}: stopped serving; deployments paused until the next `pollwatch serve` or `schedule`")


MIN_EVERY = 60  # seconds: workers look for scheduled runs every 10 s by default; a slot must be well above that
_BATCH_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def _lines(problems: list[str]) -> str:
    """Problems as indented lines, one each: a line break in a file name (outside text) is shown, not obeyed."""
    return "".join("\n  " + p.replace("\r", "\\r").replace("\n", "\\n") for p in problems)


def _watch_dir(directory: Path) -> list[Watch]:
    """The watches of a directory as the batch flow reads them (its `*.yaml` files, flows/watches_tick.py
    `watch_files`); exits naming each broken file with the loader's file:line: field messages."""
    from pollwatch.playbook import PlaybookError, load_watch

    if not directory.is_dir():
        fail(f"{directory}: no such directory" if not directory.exists() else f"{directory}: not a directory")
    files = sorted(directory.glob("*.yaml"))
    if not files:
        fail(f"{directory}: no watch files (*.yaml) in it")
    watches: list[Watch] = []
    problems: list[str] = []
    for f in files:
        try:
            watches.append(load_watch(f))
        except PlaybookError as exc:
            problems += exc.problems
    seen: dict[str, str] = {}
    for w in watches:
        if w.name in seen:  # ticks are claimed by watch name: two files of one name would share their ticks
            problems.append(f"{w.source_file}: watch {w.name} is also the name of {seen[w.name]}")
        seen.setdefault(w.name, str(w.source_file))
    if problems:
        fail(f"{directory}: {len(problems)} problem(s), nothing scheduled:" + _lines(problems))
    return watches


def _summary(watches: list[Watch]) -> str:
    from collections import Counter
    from datetime import datetime, timezone

    from pollwatch.timeutil import format_duration

    now = datetime.now(timezone.utc)
    cadences = Counter(min(p.cadence for p in w.resolved_phases()) for w in watches if w.phases)
    ended = [w.name for w in watches if max((p.end for p in w.resolved_phases()), default=now) <= now]
    text = f"{len(watches)} watch(es), finest cadence " + ", ".join(
        f"{format_duration(c)} for {n}" for c, n in sorted(cadences.items())
    )
    if ended:
        more = f" and {len(ended) - 5} more" if len(ended) > 5 else ""
        text += f"; {len(ended)} with no ticks left (phases ended): {', '.join(ended[:5])}{more}"
    return text


BatchName = Annotated[
    str, typer.Option("--name", help="The batch's name: its deployments are watches-tick-NAME-lane-<i>.")
]


@app.command("schedule-all")
def schedule_all_cmd(
    directory: Annotated[Path, typer.Argument(help="Directory of watch files (*.yaml), e.g. playbooks/watches.")],
    lanes: Annotated[
        int, typer.Option("--lanes", help="Runs per slot, taken by the pool's workers (at least as many as workers).")
    ] = 1,
    every: Annotated[
        int, typer.Option("--every", help=f"Seconds between batch slots (at least {MIN_EVERY}; divides every cadence).")
    ] = 60,
    work_pool: Annotated[
        str,
        typer.Option(
            "--work-pool", "--pool", help="Work pool that runs the lanes (created as a process pool if missing)."
        ),
    ] = "pollwatch-analysis",
    name: BatchName = "world",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be deployed; change nothing.")] = False,
) -> None:
    """Tick every watch in a directory in batches: LANES deployments of the watches-tick flow every EVERY seconds
    on one work pool; the pool's workers split each slot's due watches (docs/deploy.md). Re-applying updates them
    and deletes lanes beyond a smaller --lanes."""
    from datetime import timedelta

    from pollwatch.schedule import batch_cadence_problems, deployment_name

    if lanes < 1:
        fail(f"--lanes {lanes}: at least 1")
    if every < MIN_EVERY:
        fail(f"--every {every}: at least {MIN_EVERY} seconds")
    if not _BATCH_NAME.match(name):
        fail(f"--name {name!r}: lower-case letters, digits and single dashes (it names the deployments)")
    watches = _watch_dir(directory)
    problems = batch_cadence_problems(watches, timedelta(seconds=every))
    if problems:
        fail(
            f"--every {every}: each slot ticks a watch once, so every phase's cadence must be a multiple of it "
            "(else ticks are skipped or run early):" + _lines(problems)
        )
    deployments = [deployment_name(f"watches-tick-{name}", f"lane-{lane}") for lane in range(lanes)]
    echo(f"{directory}: {_summary(watches)}")  # watch names are outside text
    typer.echo(
        f"{'would deploy' if dry_run else 'deploying'} {lanes} lane(s) of flow watches-tick every {every} s "
        f"on work pool {work_pool}: {', '.join(deployments)}"
    )
    if dry_run:
        return
    quiet_prefect()
    from pollwatch.flows.scheduling import apply_watches_schedule

    result = apply_watches_schedule(str(directory), work_pool, lanes=lanes, every=every, name=name)
    if result.work_pool_created:
        typer.echo(f"created process work pool {work_pool}")
    typer.echo(f"deployed {', '.join(result.deployments)}")
    if result.removed:
        typer.echo(f"removed lanes beyond {lanes}: {', '.join(result.removed)}")
    typer.echo(f"start workers (any number, on any machine with this project): prefect worker start --pool {work_pool}")


@app.command("unschedule-all")
def unschedule_all_cmd(name: BatchName = "world") -> None:
    """Delete the lane deployments of a batch made by `schedule-all` (the watches' ticks and incidents stay)."""
    quiet_prefect()
    from pollwatch.flows.scheduling import remove_watches_schedule

    removed = remove_watches_schedule(name)
    typer.echo(f"{name}: removed {', '.join(removed) if removed else 'nothing (no lane deployments)'}")
