"""`pollwatch audit ...`, `pollwatch report` and `pollwatch export keepiton`: the auditor's commands.

Registered into the root app of `pollwatch.cli` as a nameless group, so the commands appear at
the top level. Every listing prints a readable table, or JSON with `--json`.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Optional

import typer

from pollwatch.cli_common import echo
from pollwatch.cli_common import fail as _fail
from pollwatch.cli_common import option_time as _time
from pollwatch.cli_common import option_watch as _load_watch

app = typer.Typer(no_args_is_help=True)
audit_app = typer.Typer(help="Inspect and verify the hash-chained audit log.", no_args_is_help=True)
export_app = typer.Typer(help="Export incidents for sharing.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(export_app, name="export")

WATCH = typer.Option(None, "--watch", "-w", help="Only this watch (its name).")
FROM = typer.Option(None, "--from", help="From this time (ISO 8601; a bare date is 00:00 UTC).")
UNTIL = typer.Option(None, "--until", help="Until this time, exclusive (ISO 8601).")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _iso(v: Any) -> Any:
    from pollwatch.audit import format_time

    return format_time(v)[:-8] + "Z" if isinstance(v, datetime) else v


def _dump(obj: Any) -> None:
    typer.echo(
        json.dumps(obj, indent=2, default=lambda v: _iso(v) if isinstance(v, datetime) else str(v), ensure_ascii=False)
    )


def _table(headers: list[str], rows: list[list[Any]], empty: str = "(none)") -> None:
    if not rows:
        typer.echo(empty)
        return
    cells = [[("-" if c is None else str(_iso(c))) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    typer.echo("  ".join("-" * w for w in widths))
    for r in cells:
        echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


# --- audit ----------------------------------------------------------------------------------------


@audit_app.command("verify")
def verify_cmd(
    head: Optional[Path] = typer.Option(
        None, "--head", help="A head file from `audit export-head`: also prove nothing was cut from the end."
    ),
    chain_only: bool = typer.Option(
        False, "--chain-only", help="Check the chain only, not the alert, incident and observation tables."
    ),
    data: bool = typer.Option(
        True, "--data", hidden=True, help="Kept for old scripts: the tables are checked by default."
    ),
    as_json: bool = JSON,
) -> None:
    """Check the whole chain and the tables it describes (read-only); exit 1 naming the first problem.

    Says what was checked and what was not (entries cut from the end need --head).
    """
    from sqlalchemy.exc import SQLAlchemyError

    from pollwatch import audit, store

    head_doc = None
    if head is not None:
        try:
            head_doc = audit.load_head(head)
        except ValueError as exc:
            _fail(str(exc))
    try:
        with store.readonly_session() as s:
            v = audit.verify_store(s, head_doc, data=not chain_only)
    except (FileNotFoundError, SQLAlchemyError) as exc:
        _fail(f"cannot read the store: {str(exc).splitlines()[0]}", 2)
    if as_json:
        _dump(v.to_json())
    elif v.ok:
        extra = f"; reaches the exported head (entry {head_doc['seq']})" if head_doc else ""
        echo(f"audit log OK: {v.entries} entries, head {v.head_seq or 0} {v.head_hash or audit.GENESIS}{extra}")
    else:
        first = v.first
        assert first is not None
        echo(f"audit log BROKEN at entry {first.seq} ({first.what}): {first.message}", fg=typer.colors.RED)
        for p in v.problems[1:]:
            echo(f"  also entry {p.seq} ({p.what}): {p.message}")
    if not as_json:
        for c in v.checked:
            echo(f"  checked: {c}")
        for c in v.not_checked:
            echo(f"  NOT checked: {c.removeprefix('not checked: ')}")
    raise typer.Exit(0 if v.ok else 1)


@audit_app.command("export-head")
def export_head_cmd(
    file: Path = typer.Argument(..., help="Where to write the head (keep a copy outside this machine)."),
) -> None:
    """Write the chain head (last entry and its hash) so a later `verify --head FILE` proves nothing was cut."""
    from pollwatch import audit, store

    from pollwatch.sinks import OutputError

    try:
        with store.session_scope() as s:
            doc = audit.export_head(s, file)
    except OutputError as exc:
        _fail(str(exc), 1)
    typer.echo(f"wrote head entry {doc['seq']} {doc['hash']} to {file}")


@audit_app.command("runs")
def runs_cmd(
    watch: Optional[str] = WATCH, since: Optional[str] = FROM, until: Optional[str] = UNTIL, as_json: bool = JSON
) -> None:
    """Flow runs: id, flow, deployment, state, playbook hash, pollwatch version."""
    from pollwatch import audit, store

    with store.session_scope() as s:
        rows = audit.runs(s, watch, _time(since, "--from"), _time(until, "--until"))
    if as_json:
        _dump(rows)
        return
    _table(
        ["started", "ended", "flow run", "flow", "deployment", "watch", "state", "playbook", "version"],
        [
            [
                r["started"],
                r["ended"],
                r["flow_run_id"],
                r["flow"],
                r["deployment"],
                r["watch"],
                r["state"],
                (r["playbook_hash"] or "-")[:12],
                r["pollwatch_version"],
            ]
            for r in rows
        ],
        "no runs recorded",
    )


@audit_app.command("incidents")
def incidents_cmd(
    watch: Optional[str] = WATCH, since: Optional[str] = FROM, until: Optional[str] = UNTIL, as_json: bool = JSON
) -> None:
    """Incidents as last decided in the log, with their decisions, alerts and overrides counted."""
    from pollwatch import audit, store

    with store.session_scope() as s:
        rows = audit.incidents(s, watch, _time(since, "--from"), _time(until, "--until"))
    if as_json:
        _dump(rows)
        return
    _table(
        ["incident", "kind", "start", "end", "status", "cause", "conf", "decisions", "alerts queued/sent", "overrides"],
        [
            [
                r["id"],
                r["kind"],
                r["start"],
                r["end"] or "ongoing",
                r["status"],
                r["cause"],
                f"{(r['cause_confidence'] or 0):.0%}",
                r["decisions"],
                f"{r['alerts_queued']}/{r['alerts_sent']}"
                + (f" ({r['alerts_failed']} failed)" if r["alerts_failed"] else ""),
                r["overrides"],
            ]
            for r in rows
        ],
        "no incidents recorded",
    )


@audit_app.command("alerts")
def alerts_cmd(
    watch: Optional[str] = WATCH,
    since: Optional[str] = FROM,
    until: Optional[str] = UNTIL,
    incident: Optional[str] = typer.Option(None, "--incident", help="Only this incident's alerts."),
    as_json: bool = JSON,
) -> None:
    """Alerts queued, sent and failed: destination, Slack channel and ts, attempts."""
    from pollwatch import audit, store

    with store.session_scope() as s:
        rows = audit.alerts(s, watch, _time(since, "--from"), _time(until, "--until"), incident)
    if as_json:
        _dump(rows)
        return
    _table(
        [
            "entry",
            "created",
            "recorded",
            "action",
            "event",
            "incident",
            "destination",
            "channel",
            "ts",
            "attempts",
            "error",
        ],
        [
            [
                r["seq"],
                r["created_at"],
                r["time"],
                r["action"],
                r["event"],
                r["incident_id"],
                r["destination"],
                r["channel"],
                r["ts"],
                r["attempts"],
                r["error"],
            ]
            for r in rows
        ],
        "no alerts recorded",
    )


def _describe(e: Any) -> str:
    p = e.payload
    if e.kind == "observations":
        return (
            f"{p.get('count')} observations from {p.get('source')} {_iso(p.get('first'))}..{_iso(p.get('last'))}"
            f", {p.get('no_data', 0)} without data, {len(p.get('gaps', []))} gaps, hash "
            f"{str(p.get('observations_hash'))[:12]}"
        )
    if e.kind == "gaps":
        return (
            f"{len(p.get('gaps', []))} data gaps, {len(p.get('notices', []))} notices from "
            f"{', '.join(p.get('sources', []))}"
        )
    if e.kind == "anomaly":
        a = p.get("anomaly", {})
        from pollwatch.models import entity_key

        ent = a.get("entity", {})
        key = entity_key(ent.get("country", "?"), ent.get("region"), ent.get("asn"), ent.get("service"))
        thr = p.get("thresholds") or {}
        return (
            f"anomaly {p.get('change')}: {a.get('source')}/{a.get('signal')} {key} {a.get('level')} from "
            f"{a.get('start')}, "
            f"expected {a.get('expected')} observed {a.get('observed')} depth {a.get('depth')} "
            f"(warning {thr.get('warning')}, critical {thr.get('critical')}, {thr.get('mode')})"
        )
    if e.kind == "incident":
        i = p.get("incident", {})
        return (
            f"incident {p.get('change')}: {i.get('kind')} {i.get('status')} "
            f"{i.get('start')}..{i.get('end') or 'ongoing'}, "
            f"cause {i.get('cause')} ({i.get('cause_confidence')}); " + "; ".join(p.get("reasons", []))
        )
    if e.kind == "alert":
        where = f" channel {p.get('channel')} ts {p.get('ts')}" if p.get("channel") else ""
        err = f" error: {p.get('error')}" if p.get("error") else ""
        return (
            f"alert {p.get('action')}: {p.get('event')} to {p.get('destination')}{where}, attempts "
            f"{p.get('attempts')}{err}"
        )
    if e.kind in ("run.start", "run.end"):
        if e.kind == "run.start":
            return (
                f"{p.get('flow')} started; deployment {p.get('deployment') or '-'}; playbook "
                f"{str(p.get('playbook_hash'))[:12]}"
            )
        return f"{p.get('flow')} {p.get('state')}"
    if e.kind == "report" and p.get("written") is False:
        return f"{p.get('file')} NOT written: {p.get('error')}"
    if e.kind == "report":
        return f"{p.get('file')} sha256 {str(p.get('sha256'))[:16]} ({p.get('bytes')} bytes)"
    if e.kind == "override":
        src = (p.get("details") or {}).get("source") or {}
        where = f" (Slack {src.get('channel')} message {src.get('message_ts')})" if src.get("message_ts") else ""
        return f"override by {p.get('who')}: {p.get('why')} {json.dumps(p.get('changes'), default=str)}{where}"
    if e.kind == "response":
        src = p.get("source") or {}
        where = f" (Slack {src.get('channel')} message {src.get('message_ts')})" if src.get("message_ts") else ""
        if p.get("action") == "refused":
            return (
                f"refused {p.get('action_requested')} by {p.get('who')} ({p.get('user_id')}): {p.get('reason')}{where}"
            )
        why = f": {p.get('why')}" if p.get("why") else ""
        return f"{p.get('action')} by {p.get('who')} ({p.get('user_id')}){why}{where}"
    return json.dumps(p, default=str)[:200]


@audit_app.command("log")
def log_cmd(
    kind: Optional[str] = typer.Option(
        None,
        "--kind",
        help="run.start, run.end, observations, gaps, anomaly, incident, alert, override, response or report.",
    ),
    watch: Optional[str] = WATCH,
    since: Optional[str] = FROM,
    until: Optional[str] = UNTIL,
    last: int = typer.Option(50, "--last", help="Only the newest N entries (0: all)."),
    as_json: bool = JSON,
) -> None:
    """The raw entries, oldest first, filtered by kind, watch and entry time."""
    from pollwatch import audit, store

    with store.session_scope() as s:
        rows = audit.entries(s, kind=kind, watch=watch, since=_time(since, "--from"), until=_time(until, "--until"))
    rows = rows[-last:] if last else rows
    if as_json:
        _dump([e.to_json() for e in rows])
        return
    _table(
        ["entry", "recorded", "kind", "watch", "subject", "what", "hash"],
        [[e.seq, e.time, e.kind, e.watch, e.subject, _describe(e)[:120], e.hash[:12]] for e in rows],
        "no entries",
    )


@audit_app.command("check-file")
def check_file_cmd(file: Path = typer.Argument(..., help="A report or export someone shared.")) -> None:
    """Is this file, byte for byte, a report or export pollwatch wrote? (SHA-256 against the log)"""
    from pollwatch import audit, store

    try:
        digest = audit.sha256_hex(file.read_bytes())
    except OSError as exc:
        _fail(f"{file}: {exc.strerror}")
    with store.session_scope() as s:
        found = [e for e in audit.entries(s, kind=audit.AuditKind.report.value) if e.payload.get("sha256") == digest]
    if not found:
        typer.secho(f"{file}: sha256 {digest} matches no report or export in the audit log", fg=typer.colors.RED)
        raise typer.Exit(1)
    e = found[0]
    typer.echo(
        f"{file}: matches entry {e.seq} ({e.subject} for {e.watch}, written {_iso(e.time)} as {e.payload.get('file')})"
    )


@audit_app.command("show")
def show_cmd(incident: str = typer.Argument(..., help="Incident id."), as_json: bool = JSON) -> None:
    """One incident's timeline: observations that opened it, decisions, alerts sent, overrides."""
    from pollwatch import audit, store

    with store.session_scope() as s:
        timeline = audit.incident_timeline(s, incident)
        evidence = None
        current = store.get_incident(s, incident)
    if not timeline and current is None:
        _fail(f"no incident {incident!r} in the audit log (list them with `pollwatch audit incidents`)", 1)
    if as_json:
        _dump({"incident": current.to_public() if current else None, "timeline": [e.to_json() for e in timeline]})
        return
    if current is not None:
        typer.echo(
            f"incident {current.id}: {current.kind.value}, {current.status}, {_iso(current.start)} .. "
            f"{_iso(current.end) or 'ongoing'}; cause {current.cause.value} ({current.cause_confidence:.0%})"
        )
        if current.acknowledged_by:
            typer.echo(
                "  acknowledged by " + ", ".join(f"{r.get('by')} at {r.get('at')}" for r in current.acknowledged_by)
            )
        if current.false_alarm:
            typer.echo(
                f"  closed as a false alarm by {current.false_alarm.get('by')} at {current.false_alarm.get('at')}: "
                f"{current.false_alarm.get('why')}"
            )
        evidence = current.evidence
        for ev in evidence:
            echo(f"  evidence: {ev.detail} [{ev.supports.value} {ev.weight:+.2f}]")
    _table(
        ["entry", "recorded", "kind", "what"],
        [[e.seq, e.time, e.kind, _describe(e)] for e in timeline],
        "no audit entries",
    )


# `pollwatch override`: a responder sets a cause (pollwatch/cli_override.py; recorded through
# audit.override_incident, with the update alert queued)
from pollwatch.cli_override import override as override_cmd  # noqa: E402

app.command("override")(override_cmd)


# --- report and export ----------------------------------------------------------------------------


def _range(w: Any, since: Optional[str], until: Optional[str]) -> tuple[datetime, datetime]:
    """The requested range, by default the watch's heightened phase (the finest cadence)."""
    from pollwatch.timeutil import parse_time

    lo, hi = _time(since, "--from"), _time(until, "--until")
    if lo is None or hi is None:
        phases = w.resolved_phases()
        if phases:
            p = min(phases, key=lambda p: p.cadence)
            d_lo, d_hi = parse_time(p.start), parse_time(p.end)
        else:
            d_lo, d_hi = parse_time(w.at_offset(timedelta(days=-1))), parse_time(w.at_offset(timedelta(days=3)))
        lo, hi = lo or d_lo, hi or d_hi
    if hi <= lo:
        _fail(f"--until ({_iso(hi)}) must be after --from ({_iso(lo)})")
    return lo, hi


@app.command("report")
def report_cmd(
    watch: str = typer.Argument(..., help="Watch name or file."),
    since: Optional[str] = FROM,
    until: Optional[str] = UNTIL,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file (default reports/<watch>-<from>.html)."),
    max_charts: int = typer.Option(24, "--max-charts", help="At most this many signal charts."),
    as_json: bool = JSON,
) -> None:
    """Write a self-contained HTML report (opens offline) for a watch and time range.

    The Prefect flow `flows/report.py` does the same and also publishes artifacts.
    """
    from pollwatch import report

    w = _load_watch(watch)
    lo, hi = _range(w, since, until)
    try:
        result = report.build_report(w, lo, hi, out, max_charts=max_charts)
    except report.OutputError as exc:
        _fail(f"{exc} (recorded in the audit log)", 1)
    if as_json:
        _dump(result.model_dump(mode="json", exclude={"markdown", "table"}))
    else:
        typer.echo(
            f"wrote {result.path}: {result.incidents} incidents, {result.alerts} alerts, "
            f"{result.charts} charts; audit chain {'intact' if result.audit_ok else 'BROKEN'}; sha256 {result.sha256}"
        )


@export_app.command("keepiton")
def keepiton_cmd(
    watch: str = typer.Argument(..., help="Watch name or file."),
    since: Optional[str] = FROM,
    until: Optional[str] = UNTIL,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="CSV file (default: standard output)."),
    shutdowns_only: bool = typer.Option(
        False, "--shutdowns-only", help="Only incidents attributed to a government order."
    ),
) -> None:
    """Incidents as CSV in the #KeepItOn STOP vocabulary (shutdown_type, shutdown_extent, affected_network, ...)."""
    from pollwatch import audit, report, store

    w = _load_watch(watch)
    lo, hi = _time(since, "--from"), _time(until, "--until")
    with store.session_scope() as s:
        incidents = store.list_incidents(s, watch=w.name, since=lo, until=hi)
    rows = report.keepiton_rows(w, incidents, shutdowns_only=shutdowns_only)
    if out is None:
        report.write_keepiton_csv(rows, sys.stdout)
        return
    try:
        report.write_keepiton_csv(rows, out)
    except report.OutputError as exc:
        with store.session_scope() as s:
            audit.record_report_failure(
                s,
                watch=w.name,
                path=out,
                what="keepiton-csv",
                error=str(exc),
                params={"from": lo, "until": hi, "shutdowns_only": shutdowns_only},
            )
        _fail(f"{exc} (recorded in the audit log)", 1)
    with store.session_scope() as s:
        audit.record_report(
            s,
            watch=w.name,
            path=out,
            what="keepiton-csv",
            params={"from": lo, "until": hi, "shutdowns_only": shutdowns_only},
        )
    typer.echo(f"wrote {len(rows)} incidents to {out}", err=True)
