"""Recurring shutdowns: episodes of one scope at about the same local time on successive days as one incident.

A region cut every night 01:00-09:00 for ten weeks, or a country cut during exam hours on each exam
day, is one deliberate event with many episodes, not seventy unrelated outages. Classification
(`pollwatch.classify`) calls this module at two points:

- when an anomaly would open a new incident, `match` looks for a recently ended incident of the
  same country, family and scope (the same region, provider or service, a provider serving the
  region, or the whole country) whose episodes started at about the same local time of day
  (within `FORM_TOLERANCE`) 1 to `FORM_GAP_DAYS` local days earlier (for an incident that is already
  recurring: up to `MAX_GAP_DAYS`). Anomalies opening in the same tick count together (the next
  night of a regional cut may show first on a provider at warning level). The new episode continues
  that incident (same id: one Slack thread) instead of opening another. An episode of a known
  pattern that starts up to `OTHER_TIME` away from the pattern's usual time joins too, with a
  note that it came at another time;
- when an incident's signals recover, `pair_holds` decides whether a lone pair (tentative since its
  second onset) stands: the second episode must end about as the first did (`pair_chance` under
  `CHANCE`), else the caller splits it off as its own incident (`split_pair`); then `end_episode`
  records the episode (start, end, local window) and, for a recurring incident, turns the
  resolution into one update per episode ("episode 23 of the daily cut: 01:00-09:10 local").

Between episodes a recurring incident is `resolved` with `end` set to its last episode's end;
its `start`/`end` are always the latest episode's, its `episodes` list has them all, and its
`pattern` the usual local window and period. `missed` notes, once per day, an expected episode of
a daily pattern that did not come by `OTHER_TIME` after its usual start.

Expected episodes after the pattern is known (the third on) start silently: the update comes when
the episode ends, or earlier when it runs `OVERRUN` past the pattern's usual end. Attribution
counts the earlier episodes as recurrence evidence (`pollwatch.attribute`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from math import log
from statistics import median
from typing import NamedTuple
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from pollwatch.models import Anomaly, Episode, Family, Incident, IncidentKind, Pattern
from pollwatch.playbook import Watch

FORM_TOLERANCE = timedelta(
    minutes=45
)  # local onsets this close on different days are the same schedule (IODA lists exam cuts at 05:00 and 05:45)
OTHER_TIME = timedelta(hours=3)  # a known pattern's episode this far off its usual time still joins, with a note
MAX_GAP_DAYS = 7  # exam days skip weekends and rest days; a week's silence ends the pattern
FORM_GAP_DAYS = (
    4  # but a pattern forms only from two episodes at most 4 days apart (a lone pair further apart is chance)
)
# A lone pair `back` days apart forms a pattern only within FORM_TOLERANCE / back (never under FORM_FLOOR: onsets
# are seen to a native step or two): two unrelated outages land within 45 min of each other's time of day by chance
# about 6% of the time per day searched, so the window shrinks as the days searched grow. In IODA's curated list,
# every first pair 2-4 days apart starts at the same minute; a 20:05 and a 19:35 nationwide cut 4 days apart are chance.
FORM_FLOOR = timedelta(minutes=15)
# A lone pair is followed as one incident from its second episode's onset, but it stands only when that episode ends
# about as the first did: the chance that an unrelated cut of the scope matches the first as well (onset and duration)
# must be under CHANCE, else the second episode is split off as its own incident (`pair_chance`).
CHANCE = 0.01
DURATION_SPREAD = 24.0  # unrelated outages last from about 30 min to 12 h: log-uniform over a factor of 24
OVERRUN = timedelta(hours=1)  # an episode this long past the usual end is news
KEEP = timedelta(days=MAX_GAP_DAYS + 1)  # ended incidents kept as candidates this long
MAX_RECENT = 500  # and never more than this many (the oldest go first)
MAX_EPISODES = 400  # episodes listed on one incident (the oldest are summarised in the count)


class Tentative(BaseModel):
    """A lone pair's second episode, in progress: what is needed to split it off if it does not end as the first."""

    before: Incident  # the first episode's incident as it ended (restored on a split)
    touched: list[str] = Field(default_factory=list)  # what the first episode's anomalies were about
    rivals: int = 1  # ended incidents of the scope the second episode could have matched (the watch's busyness)
    began: datetime  # the tick the second episode began: its detection time if it becomes its own incident
    anomaly: str  # the anomaly it began with (its own incident's id is made from it, as for any new incident)


class RecurringState(BaseModel):
    """Incidents that ended recently, which a later episode at the same local time may continue."""

    recent: dict[str, Incident] = Field(default_factory=dict)
    # what each kept incident's anomalies were about, over all its episodes ('asn:9198', 'region:KZ-KAR', ...):
    # a regional cut's next night may start on a provider serving the region, at warning level
    touched: dict[str, list[str]] = Field(default_factory=dict)
    tentative: dict[str, Tentative] = Field(default_factory=dict)  # lone pairs whose second episode is in progress


class Match(NamedTuple):
    incident: Incident  # the ended incident the anomaly starts a new episode of
    note: str  # why it came at another time than usual ('' when on time)
    rivals: int  # ended incidents of the same scope it could have matched, by days alone


def _touches(a: Anomaly) -> set[str]:
    e = a.entity
    out = {f"asn:{e.asn}"} if e.asn is not None else set()
    if e.region is not None:
        out.add(f"region:{e.region}")
    if e.service is not None:
        out.add(f"service:{e.service}")
    return out or {"country"}


def _minute(dt: datetime, tz: ZoneInfo) -> int:
    local = dt.astimezone(tz)
    return local.hour * 60 + local.minute


def _hhmm(minute: float) -> str:
    m = int(round(minute)) % 1440
    return f"{m // 60:02d}:{m % 60:02d}"


def _offset(a: float, b: float) -> float:
    """Minutes between two times of day, around midnight."""
    d = abs(a - b) % 1440
    return min(d, 1440 - d)


def _circular_median(minutes: list[int]) -> float:
    """The median time of day, unwrapped around the first value (23:50 and 00:10 average to 00:00)."""
    ref = minutes[0]
    unwrapped = [ref + ((m - ref + 720) % 1440) - 720 for m in minutes]
    return median(unwrapped) % 1440


def episode_of(watch: Watch, inc: Incident, note: str = "") -> Episode:
    tz = watch.tz
    return Episode(
        start=inc.start,
        end=inc.end,
        kind=inc.kind,
        local_start=_hhmm(_minute(inc.start, tz)),
        local_end=_hhmm(_minute(inc.end, tz)) if inc.end else None,
        note=note,
    )


def pattern_of(watch: Watch, episodes: list[Episode], missed: int = 0, missed_dates: Iterable[str] = ()) -> Pattern:
    """The usual local window and period of a list of episodes."""
    tz = watch.tz
    starts = [_minute(e.start, tz) for e in episodes]
    ends = [_minute(e.end, tz) for e in episodes if e.end is not None]
    days = [e.start.astimezone(tz).date() for e in episodes]
    gaps = [(b - a).days for a, b in zip(days, days[1:]) if (b - a).days > 0]
    if gaps and sum(g == 1 for g in gaps) >= 0.75 * len(gaps):  # a night without a cut does not end "daily"
        period = "daily"
    elif gaps and len(set(gaps)) == 1:
        period = f"every {gaps[0]} days"
    else:
        period = "irregular days"
    return Pattern(
        local_start=_hhmm(_circular_median(starts)),
        local_end=_hhmm(_circular_median(ends)) if ends else None,
        period=period,
        period_days=float(median(gaps)) if gaps else 1.0,
        timezone=watch.timezone,
        episodes=len(episodes),
        missed=missed,
        missed_dates=sorted(set(missed_dates)),
    )


def _related(watch: Watch, a: Anomaly, inc: Incident, touched: Iterable[str] = ()) -> bool:
    """Whether anomaly `a` is about the same scope as an earlier incident (time aside): the same service
    (blocks, throttling), the whole country again (any series of a nationwide cut), or the same region
    or network, directly or through a provider serving the region."""
    if a.entity.country != inc.country or a.family is not inc.family:
        return False
    t = (
        set(touched)
        | {f"service:{x}" for x in inc.scope.services}
        | {f"asn:{x}" for x in inc.scope.asns}
        | {f"region:{x}" for x in inc.scope.regions}
    )
    e = a.entity
    if inc.family is not Family.connectivity:
        # the same service (or tool) again; on the same networks when both name networks
        if e.service is None or f"service:{e.service}" not in t:
            return False
        nets = {x for x in t if x.startswith("asn:")}
        return e.asn is None or not nets or f"asn:{e.asn}" in nets
    if inc.kind is IncidentKind.nationwide_outage:
        return True
    if e.level == "country":
        # a region's cut dents the country total too: its next night may show there first, if the earlier ones did
        return "country" in t
    if _touches(a) & t:
        return True
    p = watch.provider(e.asn)
    if p is not None and {f"region:{r}" for r in p.regions} & t:
        return True
    served = {r for x in t if x.startswith("asn:") and (q := watch.provider(int(x[4:]))) for r in q.regions}
    return e.region is not None and e.region in served


def _country_wide(group: list[Anomaly]) -> bool:
    """Whether anomalies opening together look like the whole country cut: its total, or two or more networks or
    regions, critically (one big network's outage dents the country total to a warning)."""
    crit = [b for b in group if b.level == "critical"]
    if any(b.entity.level == "country" for b in crit):
        return True
    return (
        len({(b.entity.asn, b.entity.region) for b in crit if b.entity.asn is not None or b.entity.region is not None})
        >= 2
    )


def _usual_start(watch: Watch, inc: Incident) -> float:
    if inc.pattern is not None:
        h, m = inc.pattern.local_start.split(":")
        return int(h) * 60 + int(m)
    return _minute(inc.start, watch.tz)


def _form_tolerance(back: int, known: bool) -> float:
    """Minutes an onset `back` days later may be off the usual time and still be the same schedule."""
    full = FORM_TOLERANCE.total_seconds() / 60
    return full if known else max(FORM_FLOOR.total_seconds() / 60, full / back)


def match(watch: Watch, state: RecurringState, a: Anomaly, together: Iterable[Anomaly] = ()) -> Match | None:
    """The ended incident that anomaly `a` starts a new episode of, with a note when it came at another time.

    `together`: the anomalies opening at the same tick with `a` (one event's series: the next night of a
    regional cut may show first on a provider serving the region, at warning level, with the region's
    critical drop in the same tick); the scope matches when any of them is related."""
    group = [a] + [b for b in together if b.id != a.id]
    tz = watch.tz
    day = a.start.astimezone(tz).date()
    best: tuple[float, float, Incident, str] | None = None
    rivals = 0
    for inc in state.recent.values():
        touched = state.touched.get(inc.id, ())
        if inc.end is None or inc.end > a.start or not any(_related(watch, b, inc, touched) for b in group):
            continue
        if inc.kind is not IncidentKind.nationwide_outage and not all(
            _related(watch, b, inc, touched) for b in group if b.level == "critical"
        ):
            # a wider cut (the whole country, other networks or regions) is not the next episode of a narrower one
            continue
        if (
            inc.kind is IncidentKind.nationwide_outage
            and inc.family is Family.connectivity
            and not _country_wide(group)
        ):
            continue  # nor is one network's or region's outage the next episode of a nationwide cut
        back = (day - inc.start.astimezone(tz).date()).days
        if not 1 <= back <= (MAX_GAP_DAYS if inc.pattern is not None else FORM_GAP_DAYS):
            continue
        rivals += 1
        usual = _usual_start(watch, inc)
        off = _offset(_minute(a.start, tz), usual)
        if off <= _form_tolerance(back, inc.pattern is not None):
            note = ""
        elif inc.pattern is not None and off <= OTHER_TIME.total_seconds() / 60:
            note = f"came at {_hhmm(_minute(a.start, tz))} local instead of the usual {_hhmm(usual)}"
        else:
            continue
        key = (off, back)
        if best is None or key < best[:2]:
            best = (off, back, inc, note)
    return None if best is None else Match(best[2], best[3], rivals)


def begin_episode(
    watch: Watch, state: RecurringState, hit: Match, a: Anomaly, tick: datetime
) -> tuple[Incident, list[str], bool]:
    """Continue the ended incident `hit` names with a new episode starting with anomaly `a`.

    Returns the incident (open again, no anomalies yet), the reasons for an update, and whether
    to post one now (a pair just met, an episode at another time or after a miss). A lone pair is
    tentative until its second episode ends (`pair_holds`)."""
    inc, note = hit.incident, hit.note
    state.recent.pop(inc.id, None)
    if inc.pattern is None:
        state.tentative[inc.id] = Tentative(
            before=inc.model_copy(deep=True),
            touched=state.touched.get(inc.id, []),
            rivals=max(1, hit.rivals),
            began=tick,
            anomaly=a.id,
        )
    episodes = list(inc.episodes) or [episode_of(watch, inc)]
    missed = inc.pattern.missed if inc.pattern else 0
    missed_dates = inc.pattern.missed_dates if inc.pattern else []
    came_after_miss = (
        bool(missed_dates) and missed_dates[-1] >= episodes[-1].start.astimezone(watch.tz).date().isoformat()
    )
    new = Episode(start=a.start, kind=inc.kind, local_start=_hhmm(_minute(a.start, watch.tz)), note=note)
    episodes = (episodes + [new])[-MAX_EPISODES:]
    n = (inc.pattern.episodes if inc.pattern else 1) + 1
    out = inc.model_copy(
        deep=True,
        update={
            "episodes": episodes,
            "status": "open",
            "end": None,
            "start": a.start,
            "updated_at": tick,
            "anomaly_ids": [],
            "pattern": pattern_of(watch, episodes, missed, missed_dates).model_copy(
                update={"episodes": n, "tentative": inc.pattern is None}
            ),
        },
    )
    pat = out.pattern
    assert pat is not None
    reasons = []
    if n == 2:
        first = episodes[0]
        reasons.append(
            f"recurring? cut again at {new.local_start} local, "
            f"{(new.start.astimezone(watch.tz).date() - first.start.astimezone(watch.tz).date()).days} "
            f"day(s) after the cut at {first.local_start}: followed here as the same schedule; confirmed if it ends "
            f"about as that one did ({first.local_start}-{first.local_end or '?'}), else split off as its own incident"
        )
    else:
        reasons.append(f"episode {n} of the {pat.period} cut ({pat.window}) started at {new.local_start} local")
    if note:
        reasons.append(note)
    return out, reasons, n == 2 or bool(note) or came_after_miss


def pair_chance(watch: Watch, first: Episode, second: Episode, step: timedelta, rivals: int = 1) -> float:
    """The chance that an unrelated cut matches `first` as well as `second` does, under unrelated outages at any
    time of day with durations spread log-uniformly over a factor of DURATION_SPREAD:

    - its onset as close to the first's time of day, to within the series' native `step` (an hourly series puts
      every onset on the hour), once for each earlier cut it could have matched: the `rivals` (ended incidents of
      the scope within FORM_GAP_DAYS: a busy watch makes chance pairs likely) and never fewer than the days between
      the two (a schedule that skipped days is weaker evidence than one on successive days);
    - and its duration as close to the first's."""
    if first.end is None or second.end is None:
        return 1.0
    tz = watch.tz
    st = max(step.total_seconds() / 60, 1.0)
    off = _offset(_minute(first.start, tz), _minute(second.start, tz))
    days = (second.start.astimezone(tz).date() - first.start.astimezone(tz).date()).days
    p_start = min(1.0, max(1, rivals, days) * (2 * off + st) / 1440)
    lo, hi = sorted(max((e.end - e.start).total_seconds() / 60, st) for e in (first, second) if e.end)
    p_length = min(1.0, 2 * log((hi + st) / lo) / log(DURATION_SPREAD))
    return p_start * p_length


def pair_holds(watch: Watch, state: RecurringState, inc: Incident, step: timedelta) -> tuple[bool, str]:
    """For a lone pair whose second episode just ended (`inc.end` set): whether it stands, and why."""
    t = state.tentative.get(inc.id)
    if t is None or not inc.episodes or inc.end is None:
        return True, ""
    first = inc.episodes[0]
    second = _latest_ended(watch, inc)
    p = pair_chance(watch, first, second, step, t.rivals)
    why = (
        f"{first.local_start}-{first.local_end} local ({_hours(first)}) and {second.local_start}-{second.local_end} "
        f"({_hours(second)}): an unrelated cut would match this well {p:.1%} of the time"
    )
    return p <= CHANCE, why


def _latest_ended(watch: Watch, inc: Incident) -> Episode:
    """The incident's latest episode with the incident's end (when it has ended)."""
    end = inc.end
    return inc.episodes[-1].model_copy(update={"end": end, "local_end": _hhmm(_minute(end, watch.tz)) if end else None})


def _hours(e: Episode) -> str:
    return f"{((e.end or e.start) - e.start).total_seconds() / 3600:.1f} h"


def split_pair(state: RecurringState, inc: Incident) -> Tentative:
    """Undo a lone pair that did not hold: the first incident back among the candidates as it ended; returns what
    the second episode needs to become its own incident."""
    t = state.tentative.pop(inc.id)
    state.recent[inc.id] = t.before.model_copy(deep=True)
    state.touched[inc.id] = list(t.touched)
    return t


def end_episode(
    watch: Watch,
    state: RecurringState,
    inc: Incident,
    now: datetime,
    members: Iterable[Anomaly] = (),
    confirmed: str = "",
) -> tuple[str, list[str]]:
    """Record an incident that ended (as a candidate for later episodes); for a recurring incident,
    close its episode and return ('updated', reasons) instead of ('resolved', ...). `confirmed`: why a lone pair
    stands (`pair_holds`), said when its second episode ends."""
    _prune(state, now)
    remember(state, inc, members)
    state.tentative.pop(inc.id, None)
    if not inc.episodes:
        state.recent[inc.id] = inc.model_copy(deep=True)
        return "resolved", []
    last = _latest_ended(watch, inc)
    inc.episodes = inc.episodes[:-1] + [last]
    n = inc.pattern.episodes if inc.pattern else len(inc.episodes)
    pat = pattern_of(
        watch, inc.episodes, inc.pattern.missed if inc.pattern else 0, inc.pattern.missed_dates if inc.pattern else []
    )
    inc.pattern = pat.model_copy(update={"episodes": n, "tentative": False})
    state.recent[inc.id] = inc.model_copy(deep=True)
    dur = (inc.end - last.start) if inc.end else timedelta(0)
    return "updated", [
        f"episode {n} of the {inc.pattern.period} cut: {last.local_start}-{last.local_end} local "
        f"({dur.total_seconds() / 3600:.1f} h; usually {inc.pattern.window})"
    ] + ([f"the same schedule: one recurring incident from now on ({confirmed})"] if confirmed else [])


def remember(state: RecurringState, inc: Incident, members: Iterable[Anomaly]) -> None:
    """Add what an ended episode's anomalies were about to what its incident has touched."""
    members = list(members)
    basis = [a for a in members if a.level == "critical"] or members  # what was cut, not what dipped with it
    state.touched[inc.id] = sorted(set(state.touched.get(inc.id, ())).union(*(_touches(a) for a in basis)))


def overrun(watch: Watch, inc: Incident, tick: datetime) -> str | None:
    """A note when an open episode of a known pattern runs `OVERRUN` past the pattern's usual end (once per episode)."""
    pat = inc.pattern
    if (
        pat is None
        or pat.tentative  # a lone pair's second episode running long is not news of a schedule: it may be split off
        or pat.local_end is None
        or inc.end is not None
        or not inc.episodes
        or inc.episodes[-1].overran
    ):
        return None
    ep = inc.episodes[-1]
    usual = [e.end - e.start for e in inc.episodes[:-1] if e.end is not None]
    if not usual:
        return None
    limit = ep.start + median(usual) + OVERRUN
    if tick < limit:
        return None
    inc.episodes[-1] = ep.model_copy(update={"overran": True})
    return (
        f"episode {pat.episodes} still going at {tick.astimezone(watch.tz):%H:%M} local, past the usual end "
        f"({pat.local_end})"
    )


def missed(watch: Watch, state: RecurringState, tick: datetime) -> list[tuple[Incident, str]]:
    """Daily patterns whose expected episode has not come `OTHER_TIME` after its usual start: one note per day,
    at most two in a row (after that the pattern is taken to have stopped)."""
    out = []
    tz = watch.tz
    for inc in state.recent.values():
        pat = inc.pattern
        if pat is None or pat.period != "daily" or not inc.episodes:
            continue
        last_day: date = inc.episodes[-1].start.astimezone(tz).date()
        h, m = pat.local_start.split(":")
        for k in (1, 2):
            day = last_day + timedelta(days=k)
            expected = datetime(day.year, day.month, day.day, int(h), int(m), tzinfo=tz)
            if tick < expected + OTHER_TIME or day.isoformat() in pat.missed_dates:
                continue
            inc.pattern = pat = pat.model_copy(
                update={"missed": pat.missed + 1, "missed_dates": sorted([*pat.missed_dates, day.isoformat()])}
            )
            inc.version += 1
            inc.updated_at = tick
            out.append(
                (
                    inc.model_copy(deep=True),
                    f"expected episode {pat.episodes + 1} around {pat.local_start} local on {day.isoformat()} "
                    f"did not come (no cut by {(expected + OTHER_TIME).astimezone(tz):%H:%M})",
                )
            )
            break
    return out


def _prune(state: RecurringState, now: datetime) -> None:
    for k in [k for k, i in state.recent.items() if i.end is not None and now - i.end > KEEP]:
        del state.recent[k]
    if len(state.recent) > MAX_RECENT:
        for k in sorted(state.recent, key=lambda k: state.recent[k].end or now)[: len(state.recent) - MAX_RECENT]:
            del state.recent[k]
    # an incident in an episode is not in `recent` but keeps what it touched
    live = set(state.recent) | {
        k for k in state.touched if k not in state.recent and len(state.touched) <= 2 * MAX_RECENT
    }
    for k in [k for k in state.touched if k not in live]:
        del state.touched[k]


def earlier_onsets(inc: Incident) -> list[datetime]:
    """The onsets of a recurring incident's earlier episodes (recurrence evidence for attribution)."""
    return [e.start for e in inc.episodes[:-1]] if inc.episodes else []
