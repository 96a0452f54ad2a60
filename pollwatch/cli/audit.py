"""`pollwatch audit ...`: the auditor's look into the hash-chained log (verify, runs, incidents, alerts, log, show).

Every listing prints a readable table, or JSON with `--json`. The report and the #KeepItOn export
are in pollwatch/cli/report.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from pollwatch.cli.common import AsJson, From, Until, echo, fail, option_time, print_json, print_table, show_time

app = typer.Typer(help="Inspect and verify the hash-chained audit log.", no_args_is_help=True)

WatchFilter = Annotated[Optional[str], typer.Option("--watch", "-w", help="Only this watch (its name).")]


# --- audit ----------------------------------------------------------------------------------------


@app.command("verify")
def verify_cmd(
    head: Annotated[
        Optional[Path],
        typer.Option("--head", help="A head file from `audit export-head`: also prove nothing was cut from the end."),
    ] = None,
    chain_only: Annotated[
        bool, typer.Option("--chain-only", help="Check the chain only, not the alert, incident and observation tables.")
    ] = False,
    data: Annotated[
        bool, typer.Option("--data", hidden=True, help="Kept for old scripts: the tables are checked by default.")
    ] = True,
    as_json: AsJson = False,
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
            fail(str(exc))
    try:
        with store.readonly_session() as s:
            v = audit.verify_store(s, head_doc, data=not chain_only)
    except (FileNotFoundError, SQLAlchemyError) as exc:
        fail(f"cannot read the store: {str(exc).splitlines()[0]}", 2)
    if as_json:
        print_json(v.to_json())
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


@app.command("export-head")
def export_head_cmd(
    file: Annotated[Path, typer.Argument(help="Where to write the head (keep a copy outside this machine).")],
) -> None:
    """Write the chain head (last entry and its hash) so a later `verify --head FILE` proves nothing was cut."""
    from pollwatch import audit, store

    from pollwatch.sinks import OutputError

    try:
        with store.session_scope() as s:
            doc = audit.export_head(s, file)
    except OutputError as exc:
        fail(str(exc), 1)
    typer.echo(f"wrote head entry {doc['seq']} {doc['hash']} to {file}")


@app.command("runs")
def runs_cmd(watch: WatchFilter = None, since: From = None, until: Until = None, as_json: AsJson = False) -> None:
    """Flow runs: id, flow, deployment, state, playbook hash, pollwatch version."""
    from pollwatch import audit, store

    with store.session_scope() as s:
        rows = audit.runs(s, watch, option_time(since, "--from"), option_time(until, "--until"))
    if as_json:
        print_json(rows)
        return
    print_table(
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


@app.command("incidents")
def incidents_cmd(watch: WatchFilter = None, since: From = None, until: Until = None, as_json: AsJson = False) -> None:
    """Incidents as last decided in the log, with their decisions, alerts and overrides counted."""
    from pollwatch import audit, store

    with store.session_scope() as s:
        rows = audit.incidents(s, watch, option_time(since, "--from"), option_time(until, "--until"))
    if as_json:
        print_json(rows)
        return
    print_table(
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


@app.command("alerts")
def alerts_cmd(
    watch: WatchFilter = None,
    since: From = None,
    until: Until = None,
    incident: Annotated[Optional[str], typer.Option("--incident", help="Only this incident's alerts.")] = None,
    as_json: AsJson = False,
) -> None:
    """Alerts queued, sent and failed: destination, Slack channel and ts, attempts."""
    from pollwatch import audit, store

    with store.session_scope() as s:
        rows = audit.alerts(s, watch, option_time(since, "--from"), option_time(until, "--until"), incident)
    if as_json:
        print_json(rows)
        return
    print_table(
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
            f"{p.get('count')} observations from {p.get('source')} "
            f"{show_time(p.get('first'))}..{show_time(p.get('last'))}"
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


@app.command("log")
def log_cmd(
    kind: Annotated[
        Optional[str],
        typer.Option(
            "--kind",
            help="run.start, run.end, observations, gaps, anomaly, incident, alert, override, response or report.",
        ),
    ] = None,
    watch: WatchFilter = None,
    since: From = None,
    until: Until = None,
    last: Annotated[int, typer.Option("--last", help="Only the newest N entries (0: all).")] = 50,
    as_json: AsJson = False,
) -> None:
    """The raw entries, oldest first, filtered by kind, watch and entry time."""
    from pollwatch import audit, store

    with store.session_scope() as s:
        rows = audit.entries(
            s, kind=kind, watch=watch, since=option_time(since, "--from"), until=option_time(until, "--until")
        )
    rows = rows[-last:] if last else rows
    if as_json:
        print_json([e.to_json() for e in rows])
        return
    print_table(
        ["entry", "recorded", "kind", "watch", "subject", "what", "hash"],
        [[e.seq, e.time, e.kind, e.watch, e.subject, _describe(e)[:120], e.hash[:12]] for e in rows],
        "no entries",
    )


@app.command("check-file")
def check_file_cmd(
    file: Annotated[Path, typer.Argument(help="A report or export someone shared.")],
) -> None:
    """Is this file, byte for byte, a report or export pollwatch wrote? (SHA-256 against the log)"""
    from pollwatch import audit, store

    try:
        digest = audit.sha256_hex(file.read_bytes())
    except OSError as exc:
        fail(f"{file}: {exc.strerror}")
    with store.session_scope() as s:
        found = [e for e in audit.entries(s, kind=audit.AuditKind.report.value) if e.payload.get("sha256") == digest]
    if not found:
        typer.secho(f"{file}: sha256 {digest} matches no report or export in the audit log", fg=typer.colors.RED)
        raise typer.Exit(1)
    e = found[0]
    typer.echo(
        f"{file}: matches entry {e.seq} ({e.subject} for {e.watch}, written {show_time(e.time)} "
        f"as {e.payload.get('file')})"
    )


@app.command("show")
def show_cmd(
    incident: Annotated[str, typer.Argument(help="Incident id (an id prefix is enough).")],
    as_json: AsJson = False,
) -> None:
    """One incident's timeline: observations that opened it, decisions, alerts sent, overrides."""
    from pollwatch import audit, store
    from pollwatch.override import OverrideError, UnknownIncident, find_incident

    with store.session_scope() as s:
        current = store.get_incident(s, incident)
        if current is None:  # a prefix, as `override` and `brief --incident` take it
            try:
                current = find_incident(s, incident)
                incident = current.id
            except UnknownIncident:
                pass
            except OverrideError as exc:
                fail(str(exc), 1)
        timeline = audit.incident_timeline(s, incident)
        evidence = None
    if not timeline and current is None:
        fail(f"no incident {incident!r} in the audit log (list them with `pollwatch audit incidents`)", 1)
    if as_json:
        print_json({"incident": current.to_public() if current else None, "timeline": [e.to_json() for e in timeline]})
        return
    if current is not None:
        typer.echo(
            f"incident {current.id}: {current.kind.value}, {current.status}, {show_time(current.start)} .. "
            f"{show_time(current.end) or 'ongoing'}; cause {current.cause.value} ({current.cause_confidence:.0%})"
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
    print_table(
        ["entry", "recorded", "kind", "what"],
        [[e.seq, e.time, e.kind, _describe(e)] for e in timeline],
        "no audit entries",
    )
