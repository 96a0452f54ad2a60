"""Schedules for a watch: each playbook phase as recurrence rules bounded to the phase's window.

A phase (baselining, heightened, aftermath) becomes one deployment of the watch-tick flow whose
schedule produces exactly the phase's ticks (`ResolvedPhase.ticks()`, the grid replays use too).
Rules are RFC 5545 text with a floating `DTSTART` and `UNTIL` in the election's time zone, read
the way Prefect's RRuleSchedule reads them (wall-clock digits labelled with the schedule's time
zone). Wall-clock recurrence and elapsed time differ only across a UTC-offset change, so a phase
whose window crosses one is split into one rule per constant offset; the repeated local hour
after a daylight-saving fall-back is not expressible in floating local time, so its ticks get a
rule in UTC. Either way no tick moves, none is lost and none runs twice.

Pure: no Prefect here. `flows/scheduling.py` turns these specs into deployments; the helpers at
the end record what was applied (and playbook changes mid-election) in pollwatch's store.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from pollwatch.models import Notice, NoticeLevel, iso
from pollwatch.playbook import Duration, Watch
from pollwatch.timeutil import floor_time, format_duration

FLOW_NAME = "watch-tick"
ENTRYPOINT = "flows/watch_tick.py:watch_tick"
AUDIT_APPLY, AUDIT_REMOVE, AUDIT_PAUSE, AUDIT_RESUME, AUDIT_CHANGE = (
    "schedule.apply",
    "schedule.remove",
    "schedule.pause",
    "schedule.resume",
    "playbook.change",
)
# a batch of watches (pollwatch schedule-all) removed: its own kind, so a watch's own pause (`watch_paused`) stands
AUDIT_BATCH_REMOVE = "schedule.batch_remove"

_FREQS = ((86400, "DAILY"), (3600, "HOURLY"), (60, "MINUTELY"), (1, "SECONDLY"))


class ScheduleRule(BaseModel):
    """One recurrence rule: floating DTSTART/UNTIL read in `timezone`, with the ticks it yields."""

    rrule: str
    timezone: str
    first: datetime
    last: datetime
    count: int


class PhaseSchedule(BaseModel):
    """One phase of a watch as a deployment: its window, cadence and rules."""

    watch: str
    phase: str
    deployment: str
    timezone: str
    start: datetime
    end: datetime
    cadence: Duration
    rules: list[ScheduleRule] = Field(default_factory=list)

    @property
    def ticks(self) -> int:
        return sum(r.count for r in self.rules)

    @property
    def first_tick(self) -> datetime | None:
        return self.rules[0].first if self.rules else None

    @property
    def last_tick(self) -> datetime | None:
        return self.rules[-1].last if self.rules else None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def deployment_name(watch: str, phase: str) -> str:
    """`kz-2019-presidential-heightened`: one deployment of the watch-tick flow per phase."""
    return f"{_slug(watch)}-{_slug(phase)}"


def watch_tag(watch: str) -> str:
    """The tag every deployment of a watch carries (how unschedule/pause find them)."""
    return f"watch:{watch}"


def concurrency_limit_name(watch: str) -> str:
    """The global concurrency limit (1 slot) that keeps two ticks of one watch from overlapping."""
    return f"pollwatch-watch-{_slug(watch)}"


def _freq(cadence: timedelta) -> tuple[str, int]:
    seconds = int(cadence.total_seconds())
    if seconds <= 0 or cadence != timedelta(seconds=seconds):
        raise ValueError(f"cadence {cadence} must be a positive whole number of seconds")
    for size, name in _FREQS:
        if seconds % size == 0:
            return name, seconds // size
    raise AssertionError("unreachable")  # pragma: no cover


def _wall(dt: datetime, tz: ZoneInfo) -> str:
    return dt.astimezone(tz).strftime("%Y%m%dT%H%M%S")


def _ambiguous(dt: datetime, tz: ZoneInfo) -> bool:
    """A local wall-clock time that happens twice (the hour after a fall-back)."""
    local = dt.astimezone(tz).replace(tzinfo=None)
    return local.replace(tzinfo=tz, fold=0).utcoffset() != local.replace(tzinfo=tz, fold=1).utcoffset()


def rules_for_ticks(ticks: list[datetime], cadence: timedelta, tz_name: str) -> list[ScheduleRule]:
    """Recurrence rules that together yield exactly `ticks` (evenly spaced at `cadence`)."""
    if not ticks:
        return []
    tz = ZoneInfo(tz_name)
    freq, interval = _freq(cadence)

    def key(t: datetime) -> tuple[str, Any]:
        if _ambiguous(t, tz):
            return ("UTC", None)
        return (tz_name, t.astimezone(tz).utcoffset())

    rules = []
    for (zone, _), group in groupby(ticks, key=key):
        run = list(group)
        z = ZoneInfo(zone)
        text = f"DTSTART:{_wall(run[0], z)}\nRRULE:FREQ={freq};INTERVAL={interval};UNTIL={_wall(run[-1], z)}"
        rules.append(ScheduleRule(rrule=text, timezone=zone, first=run[0], last=run[-1], count=len(run)))
    return rules


def phase_schedules(watch: Watch) -> list[PhaseSchedule]:
    """One schedule per phase of the watch, bounded to the phase's window (empty phases dropped)."""
    out = []
    for p in watch.resolved_phases():
        ticks = p.ticks()
        out.append(
            PhaseSchedule(
                watch=watch.name,
                phase=p.name,
                deployment=deployment_name(watch.name, p.name),
                timezone=watch.timezone,
                start=p.start,
                end=p.end,
                cadence=p.cadence,
                rules=rules_for_ticks(ticks, p.cadence, watch.timezone),
            )
        )
    return [s for s in out if s.rules]


def due_ticks(watches: list[Watch], when: datetime, every: timedelta) -> list[tuple[Watch, datetime]]:
    """The watches due in the batch slot [T, T + every), T = `when` rounded down to `every`, each with its own
    tick: the one of its phase's grid (`ResolvedPhase.ticks()`, epoch-aligned at the phase's cadence) in the slot.
    A 1-minute batch ticks 1-minute watches every time, 5-minute watches every fifth, daily ones once a day."""
    slot = floor_time(when, every)
    out = []
    for w in watches:
        for phase in w.resolved_phases():
            latest = floor_time(slot + every - timedelta(microseconds=1), phase.cadence)
            if slot <= latest and phase.start <= latest < phase.end:
                out.append((w, latest))
                break
    return out


def batch_cadence_problems(watches: list[Watch], every: timedelta) -> list[str]:
    """Why batch slots of `every` would not tick these watches on their grids: a slot ticks a watch at most once,
    at the last tick of its phase's grid in [T, T + every), so a phase whose cadence is not a multiple of `every`
    would have ticks skipped (a 2-minute batch of a 1-minute watch) or run before their time (a 1-minute batch
    of a 90-second watch ticks 90 s at 60 s)."""
    return [
        f"{w.source_file or w.name}: phase {p.name} ticks every {format_duration(p.cadence)}, "
        f"not a multiple of {format_duration(every)}"
        for w in watches
        for p in w.resolved_phases()
        if p.cadence % every
    ]


def expand_rule(rule: ScheduleRule) -> list[datetime]:
    """The UTC times a rule yields, read as Prefect reads it (floating times labelled with the zone)."""
    from dateutil.rrule import rrulestr

    tz = ZoneInfo(rule.timezone)
    return [dt.replace(tzinfo=tz).astimezone(timezone.utc) for dt in rrulestr(rule.rrule)]


def describe(watch: Watch, schedules: list[PhaseSchedule]) -> list[dict[str, Any]]:
    """Rows for `pollwatch schedule --dry-run`: phase, first and last tick (local and UTC), cadence, ticks."""
    tz = watch.tz
    rows = []
    for s in schedules:
        first, last = s.first_tick, s.last_tick
        assert first is not None and last is not None
        rows.append(
            {
                "phase": s.phase,
                "deployment": s.deployment,
                "cadence": format_duration(s.cadence),
                "ticks": s.ticks,
                "first_local": first.astimezone(tz).isoformat(),
                "first_utc": iso(first),
                "last_local": last.astimezone(tz).isoformat(),
                "last_utc": iso(last),
                "rules": [{"rrule": r.rrule, "timezone": r.timezone, "ticks": r.count} for r in s.rules],
            }
        )
    return rows


# --- what was applied, in pollwatch's store ----------------------------------------------------


def last_applied_hash(session: Any, watch: str) -> str | None:
    """The playbook hash the watch was last scheduled with (from the audit log), if any."""
    from pollwatch import audit

    applied = audit.entries(session, kind=AUDIT_APPLY, watch=watch)
    return applied[-1].payload.get("playbook_hash") if applied else None


def record_applied(
    session: Any,
    watch: Watch,
    schedules: list[PhaseSchedule],
    removed: list[str],
    now: datetime | None = None,
    batch: dict[str, Any] | None = None,
) -> str | None:
    """Record a schedule applied to Prefect; a changed playbook is recorded too (returns the previous hash then).
    `batch`: the watch is ticked by a batch's lanes (pollwatch schedule-all: name, lanes, every, work pool and the
    lane deployments) instead of `schedules` of its own."""
    from pollwatch import audit, store

    now = now or datetime.now(timezone.utc)
    previous = last_applied_hash(session, watch.name)
    changed = previous is not None and previous != watch.content_hash
    if changed:
        audit.append(
            session,
            AUDIT_CHANGE,
            watch.name,
            watch.content_hash,
            {
                "previous_hash": previous,
                "playbook_hash": watch.content_hash,
                "file": watch.source_file,
            },
            at=now,
        )
        store.add_notices(
            session,
            [
                Notice(
                    time=now,
                    level=NoticeLevel.warning,
                    source="schedule",
                    watch=watch.name,
                    message=f"playbook of {watch.name} changed (sha256 {previous[:12]} -> "
                    f"{(watch.content_hash or '')[:12]}); "
                    "deployments and schedules updated",
                )
            ],
        )
    audit.append(
        session,
        AUDIT_APPLY,
        watch.name,
        watch.content_hash,
        {
            "playbook_hash": watch.content_hash,
            "file": watch.source_file,
            "removed": removed,
            "deployments": [
                {
                    "name": s.deployment,
                    "phase": s.phase,
                    "cadence": format_duration(s.cadence),
                    "ticks": s.ticks,
                    "rules": [r.model_dump(mode="json") for r in s.rules],
                }
                for s in schedules
            ]
            or [{"name": d} for d in (batch or {}).get("deployments", [])],
        }
        | ({"batch": {k: v for k, v in batch.items() if k != "deployments"}} if batch else {}),
        at=now,
    )
    return previous if changed else None


def watch_paused(session: Any, watch: str) -> bool:
    """Whether the watch was last paused with `pollwatch pause` (not resumed or unscheduled since).

    pollwatch's audit log, not the deployments' paused flag, is what says so: `pollwatch serve`
    pauses its deployments when it stops (so no runs pile up while nothing serves them), and the
    next `serve` or `schedule` must resume those but keep a watch a coordinator paused paused.
    """
    from pollwatch import audit

    actions = audit.entries(session, kind=[AUDIT_PAUSE, AUDIT_RESUME, AUDIT_REMOVE], watch=watch)
    return bool(actions) and actions[-1].kind == AUDIT_PAUSE


def record_action(
    session: Any,
    kind: str,
    watch: str,
    deployments: list[str],
    now: datetime | None = None,
    batch: str | None = None,
) -> None:
    """Record unschedule/pause/resume of a watch's deployments (or of the lanes of the batch that ticks it)."""
    from pollwatch import audit

    audit.append(session, kind, watch, None, {"deployments": deployments} | ({"batch": batch} if batch else {}), at=now)
