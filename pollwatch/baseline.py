"""Baselines: each series' expected level and spread over a history window, with its coverage.

The pre-election phase (flows/baseline.py) computes one Baseline per (source, signal, entity):
the level the signal's detector would expect, a robust spread, how much of the window had data
and which hours of the week (or of the day, for windows under 7 days) are covered. A baseline
is usable when the window had enough data (coverage at least `min_coverage` of the points the
signal's native step promises, and at least `min_hours` of the hours covered) and a level the
detector can judge; otherwise it is a blind spot and says why. The detectors keep their own
running state (pollwatch/detect/); baselines are what is persisted, shown in the
baseline-health artifact and used to plan around blind spots.

Expected level per detector: moving_median / threshold: median of the window (MAD spread);
seasonal: median of the daily medians (spread: median of the daily ranges); cusum: the
measurement-weighted failure rate (spread: its binomial standard deviation).

Address shares: a provider's (or region's) share of the country's address space is its /24 count
over the country's in the baseline (`with_address_shares`); classification weighs providers by it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from pollwatch.models import Baseline, Notice, NoticeLevel, Observation, entity_key
from pollwatch.playbook import Watch

DAYS_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _blind_hours(covered: set[int], possible: int) -> str:
    """A short description of the uncovered hours, e.g. 'Sun 02-05h, Mon 03h'."""
    missing = [h for h in range(possible) if h not in covered]
    if not missing:
        return ""
    runs: list[tuple[int, int]] = []
    for h in missing:
        if runs and h == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], h)
        else:
            runs.append((h, h))
    parts = []
    for a, b in runs[:4]:
        if possible == 168:
            da, ha, hb = DAYS_NAMES[a // 24], a % 24, b % 24
            parts.append(
                f"{da} {ha:02d}h"
                if a == b
                else (
                    f"{da} {ha:02d}-{hb:02d}h"
                    if a // 24 == b // 24
                    else f"{da} {ha:02d}h-{DAYS_NAMES[b // 24]} {hb:02d}h"
                )
            )
        else:
            parts.append(f"{a:02d}h" if a == b else f"{a:02d}-{b:02d}h")
    return ", ".join(parts) + (" ..." if len(runs) > 4 else "")


def compute_baselines(
    watch: Watch,
    observations: Iterable[Observation],
    window_end: datetime,
    min_coverage: float = 0.5,
    min_hours: float = 0.9,
) -> list[Baseline]:
    """One Baseline per (source, signal, entity) seen in the observations, over each signal's window."""
    lows = {name: window_end - cfg.window for name, cfg in watch.signals.items()}
    series: dict[tuple, list[Observation]] = defaultdict(list)
    for o in observations:
        lo = lows.get(o.signal)
        if lo is None or o.time >= window_end or o.time < lo:
            continue
        series[(o.source, o.signal, o.country, o.region, o.asn, o.service)].append(o)
    tz = watch.tz
    hour_of: dict[datetime, tuple[int, int]] = {}  # time -> (hour of week, hour of day), local time
    out = []
    for (source, signal, *ent), obs in sorted(
        series.items(), key=lambda kv: (kv[0][0], kv[0][1], entity_key(*kv[0][2:]))
    ):
        entity = entity_key(*ent)
        cfg = watch.signals[signal]
        window_start = window_end - cfg.window
        good = [o for o in obs if o.value is not None and (not cfg.min_count or (o.count or 0) >= cfg.min_count)]
        values = [float(o.value) for o in good]  # type: ignore[arg-type]
        promised = max(int(cfg.window / cfg.step), 1)
        coverage = min(len(values) / promised, 1.0)
        weekly = cfg.window >= timedelta(days=7)
        possible = 168 if weekly else 24
        covered = set()
        for o in good:
            h = hour_of.get(o.time)
            if h is None:
                lt = o.time.astimezone(tz)
                h = hour_of[o.time] = (lt.weekday() * 24 + lt.hour, lt.hour)
            covered.add(h[0] if weekly else h[1])
        # hours the window cannot contain (a window shorter than a week/day) do not count against it
        span_h = int(cfg.window.total_seconds() // 3600)
        reachable = min(possible, max(span_h, 1))
        expected, spread = _level(cfg.detector, good, values)
        reason = ""
        if coverage < min_coverage:
            reason = f"only {coverage:.0%} of the window has data (need {min_coverage:.0%})"
        elif len(covered) < min_hours * reachable:
            reason = f"blind hours of the {'week' if weekly else 'day'}: {_blind_hours(covered, possible)}"
        elif expected is None or (cfg.direction.value == "drop" and expected <= cfg.min_prediction):
            reason = "expected level too small to judge drops"
        out.append(
            Baseline(
                source=source,
                signal=signal,
                entity=entity,
                expected=expected,
                spread=spread,
                window_start=window_start,
                window_end=window_end,
                points=len(values),
                coverage=round(coverage, 4),
                usable=not reason,
                reason=reason,
                hours_covered=len(covered),
                hours_possible=reachable,
                detector=cfg.detector,
            )
        )
    return out


def _level(detector: str, good: list[Observation], values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    if detector == "cusum":
        n = sum((o.count or 1) for o in good)
        rate = sum(float(o.value) * (o.count or 1) for o in good) / n  # type: ignore[arg-type]
        return round(rate, 6), round(math.sqrt(max(rate * (1 - rate), 0.0) / n), 6)
    if detector == "seasonal":
        by_day: dict[str, list[float]] = defaultdict(list)
        for o, v in zip(good, values):
            by_day[o.time.date().isoformat()].append(v)
        return median(median(v) for v in by_day.values()), median(max(v) - min(v) for v in by_day.values())
    expected = median(values)
    return expected, median(abs(v - expected) for v in values)


def health_rows(baselines: Iterable[Baseline]) -> list[dict]:
    """The baseline-health table: entity, signal, points, expected level, spread, usable yes/no and why."""
    return [
        {
            "entity": b.entity,
            "signal": b.signal,
            "detector": b.detector or "",
            "points": b.points,
            "expected": None if b.expected is None else round(b.expected, 3),
            "spread": None if b.spread is None else round(b.spread, 3),
            "coverage": f"{b.coverage:.0%}",
            "hours": f"{b.hours_covered}/{b.hours_possible}" if b.hours_possible else "",
            "usable": "yes" if b.usable else "no",
            "why": b.reason,
        }
        for b in baselines
    ]


def never_judged(watch: Watch, observations: Iterable[Observation]) -> list[tuple[str, str, str, str]]:
    """Series that have data but that detection will not judge, and why: (signal, entity, setting, why).

    - the level is below the signal's `min_prediction` (the detectors refuse to judge below it: a
      0..10 index under `min_prediction: 10` is never judged);
    - the data spans less than the signal's `warm_up` (nothing is judged before it);
    - every value is the same (a stuck or placeholder series: no spread to judge against).
    Series of signals the playbook does not configure are skipped (collection drops them)."""
    series: dict[tuple[str, str], list[Observation]] = defaultdict(list)
    for o in observations:
        if o.value is not None and o.signal in watch.signals:
            series[(o.signal, o.entity_key)].append(o)
    out = []
    for (signal, entity), obs in sorted(series.items()):
        cfg = watch.signals[signal]
        good = [o for o in obs if not cfg.min_count or (o.count or 0) >= cfg.min_count]
        if not good:
            out.append(
                (
                    signal,
                    entity,
                    f"signals.{signal}.min_count",
                    f"no point has the {cfg.min_count} measurements min_count asks for",
                )
            )
            continue
        values = [float(o.value) for o in good]  # type: ignore[arg-type]
        level = median(values)
        span = max(o.time for o in good) - min(o.time for o in good) + cfg.step
        if cfg.detector != "cusum" and cfg.min_prediction > 0 and level < cfg.min_prediction:
            out.append(
                (
                    signal,
                    entity,
                    f"signals.{signal}.min_prediction",
                    f"its level ({level:g}) is below min_prediction ({cfg.min_prediction:g}): never judged",
                )
            )
        elif span < cfg.warm_up:
            out.append(
                (
                    signal,
                    entity,
                    f"signals.{signal}.warm_up",
                    f"only {span.total_seconds() / 3600:.1f} h of data, less than warm_up "
                    f"({cfg.warm_up.total_seconds() / 3600:g} h): not judged yet",
                )
            )
        elif len(good) >= 3 and len(set(values)) == 1:
            out.append(
                (
                    signal,
                    entity,
                    f"signals.{signal}",
                    f"constant at {values[0]:g} over {len(good)} points (stuck or a placeholder?)",
                )
            )
    return out


def never_judged_notices(
    watch: Watch, observations: Iterable[Observation], at: datetime, source: str = "baseline", max_named: int = 5
) -> list[Notice]:
    """One operator notice per setting that keeps series from being judged, naming the series (the first few)."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for signal, entity, setting, why in never_judged(watch, observations):
        groups[setting].append((entity, why))
    out = []
    for setting, items in sorted(groups.items()):
        named = "; ".join(f"{e}: {w}" for e, w in items[:max_named])
        more = f" (and {len(items) - max_named} more)" if len(items) > max_named else ""
        level = NoticeLevel.info if setting.count(".") == 1 else NoticeLevel.warning
        out.append(
            Notice(
                time=at,
                level=level,
                source=source,
                watch=watch.name,
                message=f"{len(items)} series with data not judged because of {setting}: {named}{more}",
            )
        )
    return out


# IODA's /24 counts: routed (BGP) and answering pings (active probing); the first the baseline has wins
SHARE_SIGNALS = ("bgp", "active_probing")


def with_address_shares(watch: Watch, baselines: Iterable[Any]) -> Watch:
    """The watch with each provider's and region's share of the country's address space: its /24 count
    over the country's in the baseline (IODA's BGP, else active probing; per-ASN and per-region series).

    A share the watch file declares wins; one the baseline cannot give stays unknown (None), and the
    classifier then relies on the country's own series (docs/detection.md)."""
    level = {(b.signal, b.entity): b.expected for b in baselines if b.expected}
    country = watch.country or ""

    def measured(region: str | None, asn: int | None) -> float | None:
        for sig in SHARE_SIGNALS:
            total, part = level.get((sig, country)), level.get((sig, entity_key(country, region, asn, None)))
            if total and part is not None:
                return round(min(part / total, 1.0), 4)
        return None

    providers = [
        p if p.share is not None else p.model_copy(update={"share": measured(None, p.asn)}) for p in watch.providers
    ]
    regions = [
        r
        if r.share is not None
        else r.model_copy(
            update={
                "share": next(
                    (x for x in (measured(n, None) for n in (r.code, r.name, *r.aliases)) if x is not None), None
                )
            }
        )
        for r in watch.regions
    ]
    return watch.model_copy(update={"providers": providers, "regions": regions})


def baselined(watch: Watch, history: Iterable[Observation], until: datetime) -> Watch:
    """`with_address_shares` from a baseline of `history` before `until` (as the baseline flow would compute it)."""
    return with_address_shares(
        watch, compute_baselines(watch, [o for o in history if o.signal in SHARE_SIGNALS and o.time < until], until)
    )
