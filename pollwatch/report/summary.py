"""Short forms of a report for Prefect artifacts and JSON: one row per incident, and a Markdown summary."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pollwatch.words import KIND_TITLES, scope_line
from pollwatch.models import iso
from pollwatch.report.data import ReportData


def incident_table(data: ReportData) -> list[dict[str, Any]]:
    """One plain row per incident (for a Prefect table artifact or JSON)."""
    sent = defaultdict(int)
    for a in data.alerts:
        if a.alert.state.value == "sent":
            sent[a.alert.incident_id] += 1
    return [
        {
            "id": i.id,
            "kind": i.kind.value,
            "scope": scope_line(i),
            "start": iso(i.start),
            "end": iso(i.end),
            "status": i.status,
            "cause": i.cause.value,
            "confidence": round(i.cause_confidence, 2),
            "severity": round(i.severity),
            "alerts_sent": sent[i.id],
            "episodes": i.pattern.episodes if i.pattern else 1,
        }
        for i in data.incidents
    ]


def markdown_summary(data: ReportData, html_path: str | None = None) -> str:
    w = data.watch
    chain = data.audit
    lines = [
        f"# pollwatch report: {w.name}",
        "",
        f"{w.election or ''} ({w.country}, {w.election_date}). Range {iso(data.since)} → {iso(data.until)}.",
        "",
        f"- Incidents: **{len(data.incidents)}**; alerts: {len(data.alerts)}; data gaps: {len(data.gaps)}; "
        f"blind spots: {len(data.blind_spots)}",
        f"- Audit chain: {chain.get('entries', 0)} entries, "
        + ("verified intact" if chain.get("ok") else f"**BROKEN**: {chain.get('first_problem')}")
        + (f", head entry {chain.get('head_seq')} `{chain.get('head_hash')}`" if chain.get("head_seq") else ""),
        f"- Playbook content hash `{(w.content_hash or '-')[:16]}`, pollwatch {data.version}",
    ]
    if html_path:
        lines.append(f"- HTML report: `{html_path}`")
    lines += ["", "| kind | start (UTC) | end (UTC) | scope | cause |", "|---|---|---|---|---|"]
    for i in data.incidents:
        lines.append(
            f"| {KIND_TITLES[i.kind]} | {iso(i.start)} | {iso(i.end) or 'ongoing'} | {scope_line(i)} | "
            f"{i.cause.value} ({i.cause_confidence:.0%}) |"
        )
    if not data.incidents:
        lines.append("| none | | | | |")
    return "\n".join(lines)
