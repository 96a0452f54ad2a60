"""The `pollwatch` command line: the shell around the core (the one core module that may reach flows).

Flows are imported inside the commands that run them, so `pollwatch playbook validate` and the
other pure commands start fast and work without Prefect configured.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from pollwatch import __version__
from pollwatch.cli_common import echo, fail
from pollwatch.cli_common import option_time as _time
from pollwatch.cli_common import option_watch as _watch

app = typer.Typer(
    help="pollwatch: catch, explain and report election internet shutdowns.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
playbook_app = typer.Typer(help="Validate and inspect playbooks and watches.", no_args_is_help=True)
observations_app = typer.Typer(
    help="Import and export observations (JSON Lines, docs/formats.md).", no_args_is_help=True
)
app.add_typer(playbook_app, name="playbook")
app.add_typer(observations_app, name="observations")
from pollwatch.cli_audit import app as audit_cli  # noqa: E402 (audit, report, export keepiton)

app.add_typer(audit_cli)
from pollwatch.cli_sources import app as sources_app  # noqa: E402  (`pollwatch fetch`, `pollwatch coverage`)

app.add_typer(sources_app)
from pollwatch.cli_alerts import app as alerts_cli  # noqa: E402 (alerts check, outbox, deliver)

app.add_typer(alerts_cli, name="alerts")
from pollwatch.cli_probes import app as probes_app  # noqa: E402  (`pollwatch probe web|deploy`)

app.add_typer(probes_app, name="probe")
from pollwatch.cli_slack import app as slack_app  # noqa: E402  (`pollwatch slack listen`)

app.add_typer(slack_app, name="slack")


def _quiet_prefect() -> None:
    """No telemetry, and Prefect's own logs at WARNING unless the user asked otherwise."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # the first start of the ephemeral API migrates its database: give a slow or busy machine time
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
    replay: bool = typer.Option(
        False,
        "--replay",
        help="Use the replay store (what replay, simulations and the demo "
        "wrote) instead of the live one: `pollwatch --replay report WATCH`.",
    ),
) -> None:
    if replay:
        from pollwatch import store

        ctx.with_resource(store.using(store.REPLAY))  # for this command only (ends with it, also under CliRunner)
    if version:
        typer.echo(f"pollwatch {__version__}")
        raise typer.Exit()


# --- playbooks -------------------------------------------------------------------------------


@playbook_app.command("validate")
def playbook_validate(files: list[Path] = typer.Argument(..., help="Template or watch files.")) -> None:
    """Check playbook files as the tick, show, schedule and report will read them;
    errors name the file, line and field.
    """
    from pollwatch.playbook import PlaybookError, load_playbook

    bad = 0
    for f in files:
        try:
            pb = load_playbook(f)
            echo(f"{f}: ok ({type(pb).__name__.lower()} {pb.name})")
            for w in pb.warnings:
                echo(f"warning: {w}", err=True, fg=typer.colors.YELLOW)
        except PlaybookError as exc:
            bad += 1
            for p in exc.problems:
                echo(p, err=True, fg=typer.colors.RED)
    if bad:
        raise typer.Exit(1)


@playbook_app.command("show")
def playbook_show(file: Path, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show a watch with its phases resolved to absolute times (local and UTC)."""
    from pollwatch.models import iso
    from pollwatch.timeutil import format_duration

    w = _watch(str(file))
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


# --- observations ----------------------------------------------------------------------------


@observations_app.command("import")
def observations_import(
    file: Path,
    fmt: str = typer.Option(
        "jsonl", "--format", help="jsonl, monash, responsive, ooni-raw, ooni-hourly or ioda-signals (docs/formats.md)."
    ),
    watch: Optional[str] = typer.Option(
        None, "--watch", help="Watch name or file: its country, time zone and providers."
    ),
    country: Optional[str] = typer.Option(None, help="ISO 3166-1 alpha-2 code (else the watch's or the file's)."),
    tz: Optional[str] = typer.Option(
        None, "--tz", help="IANA time zone of local times (monash time_e; else the watch's)."
    ),
    service: Optional[str] = typer.Option(
        None, help="Service the tests are about (OONI files; else the file's test_name)."
    ),
    scale: str = typer.Option("auto", help="monash index scale: auto, 10 or 100 (0..10 indices are multiplied by 10)."),
) -> None:
    """Import observations into the store (idempotent: the same file twice stores each once), audited."""
    from pollwatch import audit, store
    from pollwatch.adapters import OBSERVATION_FORMATS, read_observations_as
    from pollwatch.jsonl import FormatError

    if fmt not in OBSERVATION_FORMATS:
        fail(f"--format: unknown format {fmt!r}; one of {', '.join(OBSERVATION_FORMATS)}")
    w = _watch(watch) if watch else None
    try:
        with _file_progress(file) as progress:
            obs = read_observations_as(
                fmt, file, watch=w, country=country, tz=tz, service=service, scale=scale, progress=progress
            )
    except (FormatError, FileNotFoundError) as exc:
        fail(str(exc))
    with store.session_scope() as s:
        before = store.count_observations(s)
        store.upsert_observations(s, obs)
        after = store.count_observations(s)
        audit.record_observation_batches(
            s, watch=None, observations=obs, requests=[f"pollwatch observations import {file.name}"]
        )
    typer.echo(
        f"{file}: {len(obs)} observations read, {after - before} new, {len(obs) - (after - before)} already stored"
    )


PROGRESS_FROM = 8 << 20  # files this large show a progress bar (on a terminal)


class _file_progress:
    """A progress bar on stderr for files of PROGRESS_FROM bytes or more; yields the adapters' callback (or None)."""

    def __init__(self, path: Path):
        self.path, self.bar = path, None

    def __enter__(self):  # type: ignore[no-untyped-def]
        try:
            big = self.path.stat().st_size >= PROGRESS_FROM
        except OSError:
            big = False
        if not big:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

        self.bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.bar.start()
        task = self.bar.add_task(f"reading {self.path.name}", total=self.path.stat().st_size)
        return lambda done, total: self.bar.update(task, completed=done, total=total)

    def __exit__(self, *exc) -> None:  # type: ignore[no-untyped-def]
        if self.bar is not None:
            self.bar.stop()


@observations_app.command("export")
def observations_export(
    out: Path = typer.Option(..., "--out", help="JSON Lines file to write."),
    country: Optional[str] = typer.Option(None, help="ISO 3166-1 alpha-2 code."),
    since: Optional[str] = typer.Option(None, "--from", help="ISO 8601 start (inclusive)."),
    until: Optional[str] = typer.Option(None, "--until", help="ISO 8601 end (exclusive)."),
) -> None:
    """Export stored observations as JSON Lines."""
    from pollwatch import store
    from pollwatch.jsonl import write_observations

    with store.session_scope() as s:
        obs = store.query_observations(
            s, country=country.upper() if country else None, since=_time(since, "--from"), until=_time(until, "--until")
        )
    from pollwatch.sinks import OutputError

    try:
        n = write_observations(obs, out)
    except OutputError as exc:
        fail(str(exc), 1)
    typer.echo(f"{out}: {n} observations written")


# --- simulation, replay, ticks ------------------------------------------------------------------


@app.command("simulate")
def simulate_cmd(
    watch: str = typer.Argument(..., help="Watch file or name."),
    out: Path = typer.Option(..., "--out", help="Observations JSON Lines to write."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Ground-truth labels JSON to write."),
    seed: int = typer.Option(1, "--seed"),
    since: Optional[str] = typer.Option(None, "--from", help="Start (default: 3 days before election day)."),
    until: Optional[str] = typer.Option(None, "--until", help="End (default: the morning after election day)."),
    events: str = typer.Option("election-day", help="'election-day' (one event of every kind), 'none', or 'random:N'."),
) -> None:
    """Generate realistic observations for a watch, with injected events and their labels."""
    from pollwatch.jsonl import write_observations
    from pollwatch.simulate import demo_range, election_day_events, random_events, simulate
    from pollwatch.sinks import OutputError, write_output

    w = _watch(watch)
    h0, _, d1 = demo_range(w)
    start, end = _time(since, "--from") or h0, _time(until, "--until") or d1
    if events == "election-day":
        specs = election_day_events(w)
    elif events == "none":
        specs = []
    elif events.startswith("random:"):
        specs = random_events(w, start, end, int(events.split(":", 1)[1]), seed)
    else:
        fail(f"--events: expected 'election-day', 'none' or 'random:N', got {events!r}")
    sc = simulate(w, start, end, specs, seed=seed)
    try:
        write_observations(sc.observations, out)
        if labels:
            write_output(labels, json.dumps([lb.to_public() for lb in sc.labels], indent=2))
    except OutputError as exc:
        fail(str(exc), 1)
    typer.echo(f"{out}: {len(sc.observations)} observations, {len(sc.labels)} injected events")


@app.command("replay")
def replay_cmd(
    watch: str = typer.Argument(..., help="Watch file or name."),
    observations: Path = typer.Option(..., "--observations", help="Observations JSON Lines."),
    since: Optional[str] = typer.Option(None, "--from"),
    until: Optional[str] = typer.Option(None, "--until"),
    incidents_json: Optional[Path] = typer.Option(None, "--json", help="Write the incidents as JSON here."),
    quiet: bool = typer.Option(False, "--quiet", help="Do not print the alerts."),
) -> None:
    """Replay a watch over past observations through the real flows; print the alerts it would send."""
    _quiet_prefect()
    from pollwatch.flows.replay import replay

    from contextlib import nullcontext

    from pollwatch.sinks import OutputError, make_parent, output_file

    w = _watch(watch)
    if not observations.is_file():
        fail(f"{observations}: no such file")
    try:  # the output is opened before the replay: a path that cannot be written fails at once, in one line
        if incidents_json:
            make_parent(incidents_json)
        with output_file(incidents_json) if incidents_json else nullcontext() as fh:
            result = replay(str(w.source_file), str(observations), _time(since, "--from"), _time(until, "--until"))
            if fh is not None:
                fh.write(json.dumps(result["incidents"], indent=2))
    except OutputError as exc:
        fail(str(exc), 1)
    incidents = result["incidents"]
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
    watch: str = typer.Argument(..., help="Watch file or name."),
    at: Optional[str] = typer.Option(None, "--at", help="Scheduled time of the tick (default: now)."),
    observations: Optional[Path] = typer.Option(None, "--observations", help="Collect from this JSON Lines file."),
) -> None:
    """Run one watch tick now (what a deployment runs on its schedule).

    Exit code 0: the tick ran (or had already run); 1: it failed (its flow run is Failed, the operators were told,
    and the same command runs it again); 3: it ran but every source failed (no new data: gaps, no verdict).
    """
    _quiet_prefect()
    from pollwatch.flows.watch_tick import watch_tick

    w = _watch(watch)
    try:
        result = watch_tick(str(w.source_file), _time(at, "--at"), str(observations) if observations else None)
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


@app.command("demo")
def demo_cmd(
    incidents_json: Optional[Path] = typer.Option(None, "--json", help="Write the incidents here (docs/formats.md)."),
    brief_out: Optional[Path] = typer.Option(
        None, "--brief", help="Write the drafted public statement here (Markdown; .html for HTML)."
    ),
    workdir: Optional[Path] = typer.Option(
        None, help="Where to write the simulated observations (default: $POLLWATCH_HOME/demo)."
    ),
    scenario: Optional[Path] = typer.Option(
        None, help="A documented day (default: playbooks/scenarios/kz-2019-election-day.yaml)."
    ),
    seed: int = typer.Option(1, "--seed"),
    quiet: bool = typer.Option(False, "--quiet", help="Print the table only, not every alert."),
) -> None:
    """Tell election day in Kazakhstan (9-11 June 2019) as it was documented, through the real flows, with no setup.

    The observations are simulated around the documented times and scopes (the days before are the
    baseline); the replay runs the Prefect flows a live watch runs; the table at the end sets what
    the report documented against what pollwatch alerted, when, and how long after onset.
    Randomized scenarios: `pollwatch simulate`.
    """
    _quiet_prefect()
    from pollwatch import demo
    from pollwatch.jsonl import write_observations
    from pollwatch.settings import get_settings

    t0 = time.monotonic()
    settings = get_settings()
    try:
        day = demo.load_scenario(scenario or demo.DEFAULT_SCENARIO)
        w = _watch(day.watch)
        sc = demo.simulate_day(w, day, seed=seed)
    except demo.ScenarioError as exc:
        fail(str(exc))
    workdir = workdir or settings.home / "demo"
    workdir.mkdir(parents=True, exist_ok=True)
    obs_path = workdir / "observations.jsonl"
    write_observations(sc.observations, obs_path)
    inc_path = incidents_json or workdir / "incidents.json"
    typer.secho(f"pollwatch demo: {w.election or w.name} in {w.country}, {w.election_date} ({w.timezone})", bold=True)
    typer.echo(f"documented by: {day.reference}")
    typer.echo(
        f"simulated {len(sc.observations)} observations from {day.history_from:%d %b %H:%M} UTC (baseline) "
        f"to {day.until:%d %b %H:%M} UTC -> {obs_path}"
    )
    typer.echo("replaying through the Prefect flows (ephemeral API, SQLite store, alerts to the console)...\n")

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

        with store.using(store.REPLAY):
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


@app.command("brief")
def brief_cmd(
    watch: str = typer.Argument(..., help="Watch file or name."),
    incident: Optional[str] = typer.Option(None, "--incident", help="One incident (an id prefix is enough)."),
    since: Optional[str] = typer.Option(
        None, "--from", help="Incidents overlapping from this time (default: the eve of election day)."
    ),
    until: Optional[str] = typer.Option(
        None, "--until", help="...to this time (default: three days after election day)."
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="File to write (default: standard output, Markdown without charts)."
    ),
    fmt: str = typer.Option("md", "--format", help="md or html."),
) -> None:
    """Draft the public statement (headline, what, where, when, services, depth, how measured, likely cause, charts)
    from the incidents and evidence in the store: nothing invented, overrides win."""
    from pollwatch import brief, store
    from pollwatch.override import OverrideError

    if fmt not in ("md", "html"):
        fail(f"--format: expected md or html, got {fmt!r}")
    w = _watch(watch)
    lo, hi = _time(since, "--from"), _time(until, "--until")
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


from pollwatch.cli_evaluate import evaluate_cmd  # noqa: E402  (issue 5: detection quality)

app.command("evaluate")(evaluate_cmd)
from pollwatch.cli_schedule import app as _schedule_app  # noqa: E402  (issue 8: schedule, unschedule, serve, pause, resume)

app.add_typer(_schedule_app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)


if __name__ == "__main__":
    main()
