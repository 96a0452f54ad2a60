"""The `pollwatch` root command: global options and every command group, each from its own module.

The CLI is the shell around the core, and the one part of pollwatch/ that may reach flows/ and
tasks/: the command modules import them inside the commands that run them, so `pollwatch
playbook validate` and the other pure commands start fast and work without Prefect configured.
Imports point one way: main -> command modules -> common.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from pollwatch import __version__
from pollwatch.cli import (
    alerts,
    audit,
    brief,
    demo,
    evaluate,
    observations,
    override,
    playbook,
    probes,
    report,
    runs,
    schedule,
    slack,
    sources,
)

app = typer.Typer(
    help="pollwatch: catch, explain and report election internet shutdowns.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(playbook.app, name="playbook")
app.add_typer(observations.app, name="observations")
app.add_typer(runs.app)  # simulate, replay, tick
app.add_typer(demo.app)
app.add_typer(brief.app)
app.command("evaluate")(evaluate.evaluate_cmd)
app.add_typer(audit.app, name="audit")
app.command("override")(override.override)
app.add_typer(report.app)  # report, export keepiton
app.add_typer(sources.app)  # fetch, coverage
app.add_typer(alerts.app, name="alerts")
app.add_typer(probes.app, name="probe")
app.add_typer(slack.app, name="slack")
app.add_typer(schedule.app)  # schedule, unschedule, serve, pause, resume, schedule-all, unschedule-all


def _print_version(value: bool) -> None:
    """`pollwatch --version`: eager, so it needs no command after it."""
    if value:
        typer.echo(f"pollwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_print_version)
    ] = False,
    replay: Annotated[
        bool,
        typer.Option(
            "--replay",
            help="Use the replay store (what replay, simulations and the demo "
            "wrote) instead of the live one: `pollwatch --replay report WATCH`.",
        ),
    ] = False,
) -> None:
    if replay:
        from pollwatch import store

        ctx.with_resource(store.using(store.REPLAY))  # for this command only (ends with it, also under CliRunner)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)
