"""`pollwatch report` and `pollwatch export keepiton`: the HTML report and the #KeepItOn CSV of a watch.

Registered into the root app as a nameless group, so `report` and `export` appear at the top level.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from pollwatch.cli.bars import progress_bar
from pollwatch.cli.common import (
    AsJson,
    From,
    Until,
    WatchArg,
    echo,
    fail,
    option_time,
    option_watch,
    print_json,
    show_time,
)
from pollwatch.models import iso

app = typer.Typer(no_args_is_help=True)
export_app = typer.Typer(help="Export incidents for sharing.", no_args_is_help=True)
app.add_typer(export_app, name="export")


def _range(w: Any, since: Optional[str], until: Optional[str]) -> tuple[datetime, datetime]:
    """The requested range, by default the watch's heightened phase (the finest cadence)."""
    from pollwatch.timeutil import parse_time

    lo, hi = option_time(since, "--from"), option_time(until, "--until")
    if lo is None or hi is None:
        phases = w.resolved_phases()
        if phases:
            p = min(phases, key=lambda p: p.cadence)
            d_lo, d_hi = parse_time(p.start), parse_time(p.end)
        else:
            d_lo, d_hi = parse_time(w.at_offset(timedelta(days=-1))), parse_time(w.at_offset(timedelta(days=3)))
        lo, hi = lo or d_lo, hi or d_hi
    if hi <= lo:
        fail(f"--until ({show_time(hi)}) must be after --from ({show_time(lo)})")
    return lo, hi


@app.command("report")
def report_cmd(
    watch: WatchArg,
    since: From = None,
    until: Until = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="HTML file (default reports/<watch>-<from>.html).")
    ] = None,
    max_charts: Annotated[int, typer.Option("--max-charts", help="At most this many signal charts.")] = 24,
    as_json: AsJson = False,
) -> None:
    """Write a self-contained HTML report (opens offline) for a watch and time range.

    The Prefect flow `flows/report.py` does the same and also publishes artifacts.
    """
    from pollwatch import report

    w = option_watch(watch)
    lo, hi = _range(w, since, until)
    try:
        with progress_bar("report", as_json=as_json):  # the report tells it its stages
            result = report.build_report(w, lo, hi, out, max_charts=max_charts)
    except report.OutputError as exc:
        fail(f"{exc} (recorded in the audit log)", 1)
    if as_json:
        print_json(result.model_dump(mode="json", exclude={"markdown", "table"}))
    else:
        typer.echo(
            f"wrote {result.path}: {result.incidents} incidents, {result.alerts} alerts, "
            f"{result.charts} charts; audit chain {'intact' if result.audit_ok else 'BROKEN'}; sha256 {result.sha256}"
        )
        if not result.incidents and not result.charts:  # an empty page is not a quiet election
            from pollwatch import store

            hint = (
                f" (replays and the demo write to the replay store: pollwatch --replay report {w.name})"
                if store.store_kind() == store.LIVE
                else ""
            )
            echo(
                f"warning: the store has no observation of {w.name} from {iso(lo)} to {iso(hi)}: the report shows "
                f"nothing measured, not a quiet range{hint}",
                err=True,
                fg=typer.colors.YELLOW,
            )


@export_app.command("keepiton")
def keepiton_cmd(
    watch: WatchArg,
    since: From = None,
    until: Until = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="CSV file (default: standard output).")] = None,
    shutdowns_only: Annotated[
        bool, typer.Option("--shutdowns-only", help="Only incidents attributed to a government order.")
    ] = False,
) -> None:
    """Incidents as CSV in the #KeepItOn STOP vocabulary (shutdown_type, shutdown_extent, affected_network, ...)."""
    from pollwatch import report, store

    w = option_watch(watch)
    lo, hi = option_time(since, "--from"), option_time(until, "--until")
    with store.session_scope() as s:
        incidents = store.list_incidents(s, watch=w.name, since=lo, until=hi)
    rows = report.keepiton_rows(w, incidents, shutdowns_only=shutdowns_only)
    if out is None:
        report.write_keepiton_csv(rows, sys.stdout)
        return
    params = {"from": lo, "until": hi, "shutdowns_only": shutdowns_only}
    try:
        report.write_audited(w, out, "keepiton-csv", params, lambda: report.write_keepiton_csv(rows, out))
    except report.OutputError as exc:
        fail(f"{exc} (recorded in the audit log)", 1)
    typer.echo(f"wrote {len(rows)} incidents to {out}", err=True)
