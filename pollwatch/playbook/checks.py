"""Checks that need more than one field of a playbook: region codes against the country, names that refer to
the watch's regions, networks and services, milestones against phases."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pycountry

from pollwatch.playbook.watch import Playbook, Watch

LineMap = dict[tuple[Any, ...], tuple[str, int]]


def _where(lines: LineMap, loc: tuple[Any, ...], fallback: str) -> str:
    probe = tuple(loc)
    while probe:
        if probe in lines:
            f, ln = lines[probe]
            return f"{f}:{ln}"
        probe = probe[:-1]
    return f"{fallback}:1"


ISO_3166_2 = re.compile(r"^([A-Z]{2})-[A-Z0-9]{1,3}$")


class _Report:
    """Problems and warnings, each `file:line: field: message`, placed by the playbook's line map."""

    def __init__(self, lines: LineMap, fallback: str) -> None:
        self.lines, self.fallback = lines, fallback
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def problem(self, loc: tuple[Any, ...], field: str, msg: str) -> None:
        self.problems.append(f"{_where(self.lines, loc, self.fallback)}: {field}: {msg}")

    def warning(self, loc: tuple[Any, ...], field: str, msg: str) -> None:
        self.warnings.append(f"{_where(self.lines, loc, self.fallback)}: {field}: {msg}")


def _cross_checks(pb: Playbook, lines: LineMap, fallback: str) -> tuple[list[str], list[str]]:
    """What needs more than one field: region codes against the country, the names that refer to the watch's regions,
    milestone and event times on the calendar, and phases that are already over (a warning).

    Returns (problems, warnings), each `file:line: field: message`.
    """
    report = _Report(lines, fallback)
    if isinstance(pb, Watch):
        for check in (_region_codes, _region_references, _calendar_times, _phases_over):
            check(pb, report)
    return report.problems, report.warnings


def _region_codes(pb: Watch, report: _Report) -> None:
    """Each region an ISO 3166-2 code of the country (or IODA's numeric id); withdrawn codes are a warning."""
    cc = pb.country or ""
    subdivisions = pycountry.subdivisions.get(country_code=cc) or []
    current = {s.code for s in subdivisions}
    withdrawn: list[str] = []
    for i, r in enumerate(pb.regions):
        m = ISO_3166_2.match(r.code)
        if r.code.isdigit() or r.code in current:
            continue  # IODA's own region id, or a current ISO 3166-2 code
        if m and m.group(1) == cc:
            # well formed: a code ISO has since replaced (Kazakhstan renumbered its regions in 2020)
            withdrawn.append(r.code)
            continue
        names = (r.name.lower(), r.code.lower())
        by_name = next((s.code for s in subdivisions if s.name.lower() in names), None)
        hint = f"write {by_name!r}" if by_name else f"e.g. {sorted(current)[0]!r}" if current else "a code 'CC-XXX'"
        report.problem(
            ("regions", i, "code"),
            f"regions.{i}.code",
            f"{r.code!r} is not an ISO 3166-2 code of {cc} (expected '{cc}-' and 1-3 capitals or digits, as "
            f"pycountry lists them; or IODA's numeric region id): {hint}",
        )
    if withdrawn and current:
        report.warning(
            ("regions",),
            "regions",
            f"{', '.join(withdrawn)} are not among {cc}'s current ISO 3166-2 codes (pycountry "
            f"{getattr(pycountry, '__version__', '')}): fine for codes ISO has since withdrawn, else check the "
            "spelling",
        )


def _region_references(pb: Watch, report: _Report) -> None:
    """Providers' and events' regions name one of the watch's regions (by code, name or alias)."""
    if not pb.regions:
        return
    known = {r.code for r in pb.regions} | {r.name for r in pb.regions} | {a for r in pb.regions for a in r.aliases}
    refs = [("providers", i, j, name) for i, p in enumerate(pb.providers) for j, name in enumerate(p.regions)]
    refs += [("events", i, j, name) for i, e in enumerate(pb.events) for j, name in enumerate(e.regions)]
    codes = ", ".join(r.code for r in pb.regions)
    for section, i, j, name in refs:
        if name not in known:
            report.problem(
                (section, i, "regions", j),
                f"{section}.{i}.regions.{j}",
                f"{name!r} is none of the watch's regions: use a code or name from `regions` ({codes})",
            )


def _calendar_times(pb: Watch, report: _Report) -> None:
    """Milestones' and events' times exist on the calendar of the watch's time zone."""
    for kind, items in (("milestones", pb.milestones), ("events", pb.events)):
        for i, item in enumerate(items):
            for attr in ("at", "end"):
                value = getattr(item, attr, None)
                if value is None:
                    continue
                try:
                    pb.local_time(value)
                except (ValueError, OverflowError) as exc:
                    report.problem(
                        (kind, i, attr), f"{kind}.{i}.{attr}", f"{value!r} is not a time on the calendar ({exc})"
                    )


def _phases_over(pb: Watch, report: _Report) -> None:
    """Phases placed around election day; those already over are a warning (all of them: one warning)."""
    now = datetime.now(timezone.utc)
    try:
        resolved = pb.resolved_phases()
    except (ValueError, OverflowError) as exc:
        report.problem(
            ("phases",), "phases", f"the phases cannot be placed around election day {pb.election_date} ({exc})"
        )
        return
    over = [(i, p) for i, p in enumerate(resolved) if p.end <= now]
    if over and len(over) == len(resolved):
        report.warning(
            ("election_date",),
            "phases",
            f"every phase ended (the last on {resolved[-1].end:%Y-%m-%d %H:%M} UTC): a schedule "
            "would run no tick; use `pollwatch replay` for past data, or check election_date",
        )
        return
    for i, phase in over:
        report.warning(
            ("phases", i),
            f"phases.{i}",
            f"phase {phase.name!r} ended {phase.end:%Y-%m-%d %H:%M} UTC: a schedule runs none of its ticks",
        )
