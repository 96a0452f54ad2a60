"""Evidence items from what happened at the same time, or at this time before: recurrence and schedules,
election milestones, political events, recorded power, weather and cable events, other countries at once,
Cloudflare Radar's label. One function per item, registered by name with its hand-set weight (or none, when
its weight is fitted: pollwatch.attribute.weights); adding an item touches only the module it goes in."""

from __future__ import annotations

from datetime import datetime, timedelta

from pollwatch.attribute.context import (
    EVENT_CAUSE,
    MILESTONE_WINDOW,
    POLITICAL_EVENTS,
    RADAR_CAUSES,
    RECURRENCE_DAYS,
    SAME_TIME_WINDOW,
    recurrence_days,
    same_time_days,
    schedule_episodes,
)
from pollwatch.attribute.registry import Facts, evidence
from pollwatch.models import Cause, Evidence, IncidentKind, iso
from pollwatch.recurring import earlier_onsets


def _episodes(f: Facts) -> list[datetime]:
    """A recurring incident's own earlier episodes."""
    return [t for t in earlier_onsets(f.incident) if t < f.start - timedelta(hours=1)]


def _earlier(f: Facts) -> list[datetime]:
    """Onsets of earlier incidents of this country and family, and the incident's own earlier episodes."""
    inc = f.incident
    past = [
        i.start
        for i in f.ctx.past
        if i.id != inc.id and i.country == inc.country and i.start < f.start and (i.family is inc.family)
    ]
    return past + _episodes(f)


@evidence("recurrence_one_day", "recurrence_same_time")
def recurrence(f: Facts) -> Evidence | None:
    """Recurrence exactly one day later, else at the same local time some days later."""
    family = f.incident.family.value
    earlier = _earlier(f)
    hours = recurrence_days(f.start, earlier)
    if hours is not None:
        return f.weigh(
            "recurrence_one_day",
            1.0,
            f"a {family} incident started {hours:.1f} h earlier, at the same time the day before",
            {"hours_earlier": round(hours, 2)},
        )
    back = same_time_days(f.start, earlier, f.watch.tz)
    if back is None:
        return None
    return f.weigh(
        "recurrence_same_time",
        1.0,
        f"a {family} incident started at the same local time {back} days earlier (a schedule)",
        {"days_earlier": back},
    )


@evidence("recurring_schedule")
def recurring_schedule(f: Facts) -> Evidence | None:
    """A schedule: two or more earlier episodes of this scope at the same local time within the last days."""
    episodes = _episodes(f)
    sched = schedule_episodes(f.start, _earlier(f) if not episodes else episodes, f.watch.tz)
    if sched < 2:
        return None
    return f.weigh(
        "recurring_schedule",
        1.0,
        f"episode {sched + 1} at the same local time "
        f"({f.start.astimezone(f.watch.tz):%H:%M}) within {RECURRENCE_DAYS} days of the one before: a schedule, "
        "not a failure",
        {"earlier_episodes": sched},
    )


# onset near polls open/close, counting, results
@evidence(election_milestone=1.0)
def election_milestone(f: Facts) -> Evidence | None:
    """Proximity to the election's milestones."""
    nearest = None
    for name, when in f.watch.milestone_times().items():
        delta = abs(f.start - when)
        if nearest is None or delta < nearest[1]:
            nearest = (name, delta, when)
    if not nearest or nearest[1] > MILESTONE_WINDOW:
        return None
    minutes = nearest[1].total_seconds() / 60
    return f.weigh(
        "election_milestone",
        1 - nearest[1] / MILESTONE_WINDOW / 2,
        f"onset {minutes:.0f} min from {nearest[0]} ({nearest[2].astimezone(f.watch.tz):%Y-%m-%d %H:%M} local)",
        {"milestone": nearest[0], "minutes": round(minutes, 1)},
    )


# near a protest / announcement the coordinator recorded
@evidence(political_event=1.0)
def political_event(f: Facts) -> Evidence | None:
    """Proximity to political events the coordinator recorded."""
    political = [
        (abs(f.start - e.start), e)
        for e in f.events
        if e.type in POLITICAL_EVENTS and abs(f.start - e.start) <= MILESTONE_WINDOW
    ]
    if not political:
        return None
    delta, e = min(political, key=lambda t: t[0])
    return f.weigh(
        "political_event",
        1 - delta / MILESTONE_WINDOW / 2,
        f"onset {delta.total_seconds() / 60:.0f} min from {e.type} '{e.name}' ({e.source})",
        {"event": e.name, "minutes": round(delta.total_seconds() / 60, 1)},
    )


# power_or_weather_event: a recorded power cut, storm, earthquake; cable_event: a recorded cable cut
@evidence(power_or_weather_event=-3.5, cable_event=-3.5)
def recorded_cause(f: Facts) -> list[Evidence]:
    """Against: power, weather or cable events recorded at the time (one item per event)."""
    out = []
    start, regions = f.start, f.incident.scope.regions
    for e in f.events:
        cause = EVENT_CAUSE.get(e.type)
        name = "power_or_weather_event" if cause else "cable_event" if e.type == "cable_cut" else None
        if name is None:
            continue
        e_end = e.end or e.start + MILESTONE_WINDOW
        if not (e.start - MILESTONE_WINDOW <= start <= e_end):
            continue
        if e.regions and regions and not set(e.regions) & set(regions):
            continue
        out.append(
            f.weigh(
                name,
                1.0,
                f"{e.type.replace('_', ' ')} recorded by {e.source}: '{e.name}' from {iso(e.start)}",
                {
                    "event": e.name,
                    "type": e.type,
                    "minutes_before_onset": round((start - e.start).total_seconds() / 60, 1),
                },
                cause or Cause.cable_cut,
            )
        )
    return out


@evidence("other_countries_same_time")
def other_countries_same_time(f: Facts) -> Evidence | None:
    """Against: other countries affected at the same time (a shared cable or upstream)."""
    inc, start = f.incident, f.start
    others = {
        i.country
        for i in f.ctx.others
        if i.country != inc.country
        and i.kind is IncidentKind.nationwide_outage
        and abs(i.start - start) <= SAME_TIME_WINDOW
    }
    others |= {
        e.country or e.name
        for e in f.events
        if e.type == "neighbour_outage" and abs(e.start - start) <= SAME_TIME_WINDOW
    }
    if not others:
        return None
    return f.weigh(
        "other_countries_same_time",
        1.0,
        f"other countries affected at the same time: {', '.join(sorted(others))}",
        {"countries": sorted(others)},
        Cause.cable_cut,
    )


# Cloudflare Radar's cause label (sign from the label)
@evidence(radar_label=3.0)
def radar_label(f: Facts) -> Evidence | None:
    """Cloudflare Radar's cause label: for when it says government-directed, against (its cause) otherwise."""
    for e in f.events:
        if e.type == "radar_outage" and e.cause and abs(e.start - f.start) <= SAME_TIME_WINDOW:
            label = RADAR_CAUSES.get(e.cause.upper().replace(" ", "_"), Cause.unknown)
            if label is Cause.unknown:
                continue
            against = None if label is Cause.government_directed else label
            w = f.weights.get("radar_label", 0.0)
            return f.weigh(
                "radar_label",
                1.0,
                f"Cloudflare Radar labels it {e.cause}",
                {"label": e.cause},
                against,
                weight=w if against is None else -abs(w),
            )
    return None
