"""Recurring-shutdown evaluation: patterns of episodes through the whole analysis, scored per pattern.

Cases:
- IODA's curated 2018-2020 list (`curated_patterns`): its government-ordered and exam shutdowns,
  chained per country and scope when each starts within 60 min of the previous one's local time
  1-7 local days later, kept when a chain has three or more episodes. Only their days, local hours
  and durations are used, as simulated signals (the list has no measurements): the simulated
  watch is the KZ watch in the country's time zone, without milestones, services or tools;
- generated curfews and exam calendars (`generated_patterns`): a region or the whole country cut
  nightly at a random hour for 5-8 nights, or during exam hours on days 1-3 apart;
- controls (`control_runs`): random unrelated outages and blocks (`simulate.random_events`: every
  kind, a random scope, two a day, each at a random time of its day) over nine days: any recurring
  incident there is a false one.

Scores (`summarize_patterns`): incidents per pattern (goal: one, never one per night), episodes
found (an incident or one of its episodes overlaps the episode), whether every alert from the third
episode on says government-directed, and recurring incidents in the controls (goal: 0).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from pollwatch.evaluate import overlaps
from pollwatch.models import Cause, Family, IncidentKind
from pollwatch.pipeline import analyse
from pollwatch.playbook import Watch
from pollwatch.simulate import EventSpec, Label, random_events, simulate

CHAIN_TOLERANCE = timedelta(minutes=60)
MAX_EPISODE = timedelta(hours=16)  # longer "episodes" in the list overlap the next day: not a daily pattern
DEFAULT_EPISODE = timedelta(hours=5, minutes=30)  # the paper's median shutdown duration, for rows without an end
HISTORY = timedelta(days=2)
TICK = timedelta(minutes=10)


class PatternCase(BaseModel):
    name: str
    timezone: str
    kind: IncidentKind = IncidentKind.nationwide_outage
    regions: list[str] = Field(default_factory=list)
    episodes: list[tuple[datetime, datetime]]


class PatternResult(BaseModel):
    name: str
    episodes: int
    found: int
    incidents: int  # distinct connectivity incidents overlapping the episodes
    recurring_incidents: int
    # every event from the third episode on government-directed (None: under 3 episodes found)
    cause_from_third: bool | None
    causes: list[str] = Field(default_factory=list)


def curated_patterns(path: str | Path) -> list[PatternCase]:
    """Chains of government-ordered / exam shutdowns at the same local hour in IODA's curated list."""
    from pollwatch.calibrate import country_timezone, read_events

    events = [e for e in read_events(path) if e.cause in ("Government-Ordered", "Exams") and e.code]
    by: dict[tuple[str, str], list[Any]] = {}
    for e in events:
        by.setdefault((e.code, e.scope), []).append(e)
    out: list[PatternCase] = []
    for (code, scope), es in sorted(by.items()):
        tz = country_timezone(code)
        if tz is None:
            continue
        es.sort(key=lambda e: e.start)

        def minute(t: datetime) -> int:
            lt = t.astimezone(tz)
            return lt.hour * 60 + lt.minute

        chains: list[list[Any]] = []
        for e in es:
            last = chains[-1][-1] if chains else None
            if last is not None:
                gap = (e.start.astimezone(tz).date() - last.start.astimezone(tz).date()).days
                off = abs(minute(e.start) - minute(last.start))
                if 1 <= gap <= 7 and min(off, 1440 - off) <= CHAIN_TOLERANCE.total_seconds() / 60:
                    chains[-1].append(e)
                    continue
            chains.append([e])
        for chain in chains:
            eps = []
            for e in chain:
                dur = timedelta(hours=e.duration_h) if e.duration_h else DEFAULT_EPISODE
                if dur <= MAX_EPISODE:
                    eps.append((e.start, e.start + dur))
            if len(eps) >= 3:
                out.append(
                    PatternCase(
                        name=f"ioda-{code}-{eps[0][0].astimezone(tz):%Y-%m-%d}",
                        timezone=str(tz.key),
                        kind=IncidentKind.nationwide_outage if scope == "Country" else IncidentKind.regional_outage,
                        episodes=eps,
                    )
                )
    return out


def generated_patterns(watch: Watch, n: int = 6, seed: int = 900) -> list[PatternCase]:
    """Curfews (nightly, 5-8 nights) and exam calendars (days 1-3 apart, 6-8 exam days), regional or nationwide."""
    out = []
    regions = [r.code for r in watch.regions]
    for i in range(n):
        rng = random.Random(seed + i)
        exam = i % 2 == 1
        day0 = watch.at_offset(timedelta(days=-40 + 12 * i))
        if exam:
            hour, hours, days = rng.choice([6, 7, 8, 9]), rng.uniform(2.5, 4.0), rng.randint(6, 8)
            offsets, d = [], 0
            for _ in range(days):
                offsets.append(d)
                d += rng.choice([1, 1, 1, 2, 3])
        else:
            hour, hours, days = rng.choice([18, 20, 22, 0, 1]), rng.uniform(4.0, 9.0), rng.randint(5, 8)
            offsets = list(range(days))
        regional = rng.random() < 0.5
        eps = []
        for d in offsets:
            start = day0 + timedelta(days=d, hours=hour, minutes=rng.choice([0, 0, 0, 5, 10]))
            eps.append((start, start + timedelta(hours=hours, minutes=rng.uniform(-20, 20))))
        out.append(
            PatternCase(
                name=f"{'exams' if exam else 'curfew'}-{seed + i}",
                timezone=watch.timezone,
                kind=IncidentKind.regional_outage if regional else IncidentKind.nationwide_outage,
                regions=[rng.choice(regions)] if regional else [],
                episodes=eps,
            )
        )
    return out


def _pattern_watch(watch: Watch, tz: str) -> Watch:
    """The simulated watch for a pattern: the same country model in the pattern's
    time zone, no milestones or services.
    """
    return watch.model_copy(
        update={"timezone": tz, "milestones": [], "events": [], "services": [], "circumvention": []}
    )


def run_pattern(watch: Watch, case: PatternCase, seed: int = 7) -> PatternResult:
    w = _pattern_watch(watch, case.timezone)
    specs = [
        EventSpec(kind=case.kind, start=s, end=e, regions=case.regions, cause=Cause.government_directed)
        for s, e in case.episodes
    ]
    first, last = case.episodes[0][0], case.episodes[-1][1]
    start, end = first - HISTORY, last + timedelta(hours=6)
    sc = simulate(w, start, end, specs, seed=seed)
    watch_start = first - timedelta(days=1)
    ticks = [watch_start + TICK * k for k in range(int((end - watch_start) / TICK))]
    out = analyse(w, None, ticks, sc.observations)
    labels = [
        Label(
            id=f"{case.name}-{i}",
            kind=case.kind,
            country=w.country or "",
            regions=case.regions,
            start=s,
            end=e,
            cause=Cause.government_directed,
        )
        for i, (s, e) in enumerate(case.episodes)
    ]
    conn = [i for i in out.incidents if i.family is Family.connectivity]
    hit_ids = set()
    found = 0
    for lb in labels:
        hits = [i for i in conn if overlaps(i, lb)]
        found += bool(hits)
        hit_ids |= {i.id for i in hits}
    later = [
        ev.incident
        for ev in out.events
        if ev.incident.id in hit_ids and ev.incident.pattern and ev.incident.pattern.episodes >= 3
    ]
    return PatternResult(
        name=case.name,
        episodes=len(labels),
        found=found,
        incidents=len(hit_ids),
        recurring_incidents=sum(1 for i in conn if i.pattern is not None),
        cause_from_third=(all(i.cause is Cause.government_directed for i in later) if later else None),
        causes=[f"{i.pattern.episodes if i.pattern else 1}:{i.cause.value}:{i.cause_confidence:.2f}" for i in later],
    )


def control_runs(
    watch: Watch, n: int = 4, seed: int = 700, days: int = 9, events: int = 18
) -> list[tuple[str, int, int]]:
    """Random unrelated events over `days`: (name, incidents, recurring incidents) per scenario."""
    out = []
    for i in range(n):
        s = seed + i
        start = watch.at_offset(timedelta(days=-30))
        watch_start = start + HISTORY
        end = watch_start + timedelta(days=days)
        # unrelated outages come at any time of day: random_events spaces its slots 12 h apart, which would put
        # every event at one of two local times; redraw each onset's time within its day (same duration)
        rng = random.Random(s * 31 + 7)
        specs = []
        for sp in random_events(watch, watch_start, end, events, s):
            day = sp.start.replace(hour=0, minute=0, second=0, microsecond=0)
            onset = day + timedelta(minutes=5 * rng.randrange(288))
            specs.append(sp.model_copy(update={"start": onset, "end": onset + (sp.end - sp.start)}))
        sc = simulate(watch, start, end, specs, seed=s, country_services=True, service_base=(0.0, 0.1))
        ticks = [watch_start + TICK * k for k in range(int((end - watch_start) / TICK))]
        res = analyse(watch, None, ticks, sc.observations)
        out.append((f"control-{s}", len(res.incidents), sum(1 for x in res.incidents if x.pattern is not None)))
    return out


def summarize_patterns(results: list[PatternResult], controls: list[tuple[str, int, int]]) -> dict[str, Any]:
    eps = sum(r.episodes for r in results)
    found = sum(r.found for r in results)
    judged = [r for r in results if r.cause_from_third is not None]
    return {
        "patterns": len(results),
        "one_incident_per_pattern": sum(r.incidents == 1 for r in results),
        "max_incidents_per_pattern": max((r.incidents for r in results), default=0),
        "episodes": eps,
        "episodes_found": found,
        "episode_recall": round(found / eps, 4) if eps else None,
        "patterns_with_3_episodes_found": len(judged),
        "cause_government_from_third": sum(bool(r.cause_from_third) for r in judged),
        "cause_government_from_third_share": round(sum(bool(r.cause_from_third) for r in judged) / len(results), 4)
        if results
        else None,
        "control_scenarios": len(controls),
        "control_incidents": sum(c[1] for c in controls),
        "control_recurring_incidents": sum(c[2] for c in controls),
    }
