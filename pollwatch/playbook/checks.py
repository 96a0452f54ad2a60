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


def _cross_checks(pb: Playbook, lines: LineMap, fallback: str) -> tuple[list[str], list[str]]:
    """What needs more than one field: region codes against the country, the names that refer to the watch's regions,
    milestone and event times on the calendar, and phases that are already over (a warning).

    Returns (problems, warnings), each `file:line: field: message`.
    """
    problems: list[str] = []
    warnings: list[str] = []

    def at(loc: tuple[Any, ...], field: str, msg: str, out: list[str] = problems) -> None:
        out.append(f"{_where(lines, loc, fallback)}: {field}: {msg}")

    if not isinstance(pb, Watch):
        return problems, warnings
    cc = pb.country or ""
    current = {s.code for s in pycountry.subdivisions.get(country_code=cc) or []}
    withdrawn: list[str] = []
    for i, r in enumerate(pb.regions):
        m = ISO_3166_2.match(r.code)
        if r.code.isdigit() or r.code in current:
            continue  # IODA's own region id, or a current ISO 3166-2 code
        if m and m.group(1) == cc:
            # well formed: a code ISO has since replaced (Kazakhstan renumbered its regions in 2020)
            withdrawn.append(r.code)
            continue
        by_name = next(
            (
                s.code
                for s in pycountry.subdivisions.get(country_code=cc) or []
                if s.name.lower() in (r.name.lower(), r.code.lower())
            ),
            None,
        )
        hint = f"write {by_name!r}" if by_name else f"e.g. {sorted(current)[0]!r}" if current else "a code 'CC-XXX'"
        at(
            ("regions", i, "code"),
            f"regions.{i}.code",
            f"{r.code!r} is not an ISO 3166-2 code of {cc} (expected '{cc}-' and 1-3 capitals or digits, as "
            "pycountry lists them; "
            f"or IODA's numeric region id): {hint}",
        )
    if withdrawn and current:
        at(
            ("regions",),
            "regions",
            f"{', '.join(withdrawn)} are not among {cc}'s current ISO 3166-2 codes (pycountry "
            f"{getattr(pycountry, '__version__', '')}): fine for codes ISO has since withdrawn, else check the "
            "spelling",
            warnings,
        )
    known = {r.code for r in pb.regions} | {r.name for r in pb.regions} | {a for r in pb.regions for a in r.aliases}
    refs = [
        (("providers", i, "regions", j), f"providers.{i}.regions.{j}", name)
        for i, p in enumerate(pb.providers)
        for j, name in enumerate(p.regions)
    ]
    refs += [
        (("events", i, "regions", j), f"events.{i}.regions.{j}", name)
        for i, e in enumerate(pb.events)
        for j, name in enumerate(e.regions)
    ]
    for loc, field, name in refs:
        if pb.regions and name not in known:
            at(
                loc,
                field,
                f"{name!r} is none of the watch's regions: use a code or name from `regions` "
                f"({', '.join(r.code for r in pb.regions)})",
            )
    for kind, items in (("milestones", pb.milestones), ("events", pb.events)):
        for i, item in enumerate(items):
            for attr in ("at", "end"):
                value = getattr(item, attr, None)
                if value is None:
                    continue
                try:
                    pb.local_time(value)
                except (ValueError, OverflowError) as exc:
                    at((kind, i, attr), f"{kind}.{i}.{attr}", f"{value!r} is not a time on the calendar ({exc})")
    now = datetime.now(timezone.utc)
    try:
        resolved = pb.resolved_phases()
    except (ValueError, OverflowError) as exc:
        at(("phases",), "phases", f"the phases cannot be placed around election day {pb.election_date} ({exc})")
        resolved = []
    over = [(i, p) for i, p in enumerate(resolved) if p.end <= now]
    if over and len(over) == len(resolved):
        at(
            ("election_date",),
            "phases",
            f"every phase ended (the last on {resolved[-1].end:%Y-%m-%d %H:%M} UTC): a schedule "
            "would run no tick; use `pollwatch replay` for past data, or check election_date",
            warnings,
        )
    else:
        for i, phase in over:
            at(
                ("phases", i),
                f"phases.{i}",
                f"phase {phase.name!r} ended {phase.end:%Y-%m-%d %H:%M} UTC: a schedule runs none of its ticks",
                warnings,
            )
    return problems, warnings
