"""Calibration of attribution's weights on the IODA curated outage list (docs/attribution.md).

The list (ground_truth/ioda_curated_outages_2018_2020.csv, from "Destination Unreachable",
SIGCOMM 2023) gives for each investigated outage its start (UTC, to the minute), duration,
scope (Country / Region / AS), whether it was visible in IODA's BGP, active-probing and telescope
signals, and a cause. This module turns its rows into the same evidence items the live scorer
uses (`pollwatch.attribute`), fits the calibrated weights by L2-regularised logistic regression
with balanced class weights (government-ordered and exam shutdowns against every other known
cause), and cross-validates the whole scorer. The fitted numbers are pasted into
`pollwatch/attribute/weights.py` (CALIBRATED_WEIGHTS) by hand: the data itself never goes into the repository.

Rows: several rows of one event (one per region or AS, starting within 30 minutes in one country)
are one event, so an event is never both in a training and a test fold. Rows whose end is before
their start or unreadable (`quality_flag`) keep their start, visibility and scope (all the
features use) and lose only their duration. Local time comes from the country's time zone
(`country_timezone`): the capital's zone for countries with several.

Run `python -m pollwatch.calibrate [CSV]` to print the fitted weights.
"""

from __future__ import annotations

import csv
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo


from pollwatch.attribute import (
    CALIBRATED_WEIGHTS,
    DEFAULT_WEIGHTS,
    RECURRENCE_TOLERANCE,
    SAME_TIME_WINDOW,
    onset_alignment,
    recurrence_days,
    same_time_days,
    schedule_episodes,
    sigmoid,
)
from pollwatch.settings import real_data_dir
from pollwatch.timeutil import parse_time
from pollwatch.words import country_code

CURATED = Path("ground_truth") / "ioda_curated_outages_2018_2020.csv"


def default_csv() -> Path | None:
    base = real_data_dir()
    return base / CURATED if base and (base / CURATED).is_file() else None


GOVERNMENT = {"Government-Ordered", "Exams"}
UNKNOWN = {"", "Unknown"}
FEATURES = (
    "onset_on_the_hour",
    "onset_on_the_half_hour",
    "all_signals_agree",
    "nationwide_scope",
    "single_network",
    "recurrence_one_day",
    "recurrence_same_time",
    "recurring_schedule",
    "other_countries_same_time",
)
FIXED = ("providers_together",)  # expert-weighted items the list can also show
EVENT_WINDOW = timedelta(minutes=30)

# Capitals' zones where zone.tab's first zone for the country is not the capital's.
CAPITAL_TZ = {
    "US": "America/New_York",
    "CA": "America/Toronto",
    "RU": "Europe/Moscow",
    "BR": "America/Sao_Paulo",
    "AU": "Australia/Sydney",
    "MX": "America/Mexico_City",
    "ID": "Asia/Jakarta",
    "CD": "Africa/Kinshasa",
    "KZ": "Asia/Almaty",
    "AR": "America/Argentina/Buenos_Aires",
    "CL": "America/Santiago",
    "EC": "America/Guayaquil",
    "MN": "Asia/Ulaanbaatar",
    "CN": "Asia/Shanghai",
    "PG": "Pacific/Port_Moresby",
    "FM": "Pacific/Pohnpei",
    "PF": "Pacific/Tahiti",
    "UA": "Europe/Kyiv",
    "UZ": "Asia/Tashkent",
    "GL": "America/Nuuk",
    "ES": "Europe/Madrid",
    "PT": "Europe/Lisbon",
    "MH": "Pacific/Majuro",
    "NZ": "Pacific/Auckland",
    "EG": "Africa/Cairo",
    "MY": "Asia/Kuala_Lumpur",
}


@lru_cache(maxsize=1)
def _zone_tab() -> dict[str, str]:
    """Country code -> first zone in the IANA zone.tab (system copy, else the tzdata package's)."""
    candidates = [Path("/usr/share/zoneinfo/zone.tab")]
    try:
        import tzdata  # type: ignore[import-not-found]

        candidates.append(Path(tzdata.__file__).parent / "zoneinfo" / "zone.tab")
    except ImportError:  # pragma: no cover
        pass
    out: dict[str, str] = {}
    for path in candidates:
        if path.is_file():
            for line in path.read_text().splitlines():
                if line and not line.startswith("#"):
                    parts = line.split("\t")
                    out.setdefault(parts[0], parts[2])
            break
    return out


def country_timezone(code: str) -> ZoneInfo | None:
    tz = CAPITAL_TZ.get(code) or _zone_tab().get(code)
    return ZoneInfo(tz) if tz else None


# --- events from rows ---------------------------------------------------------------------------


@dataclass
class CuratedEvent:
    """One outage event of the curated list (its rows merged)."""

    ids: list[str]
    country: str
    code: str | None
    start: datetime  # UTC
    duration_h: float | None
    scope: str  # Country | Region | AS
    networks: int  # AS rows
    all_visible: bool
    cause: str
    features: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> int | None:
        """1 government-directed, 0 another known cause, None unknown."""
        if self.cause in UNKNOWN:
            return None
        return 1 if self.cause in GOVERNMENT else 0


def read_events(path: str | Path) -> list[CuratedEvent]:
    """The list's rows as events with their evidence features (all causes, unknown included)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("start_utc")]
    rows.sort(key=lambda r: (r["country"], r["start_utc"]))
    groups: list[list[dict[str, str]]] = []
    for r in rows:
        last = groups[-1] if groups else None
        if (
            last
            and last[0]["country"] == r["country"]
            and parse_time(r["start_utc"]) - parse_time(last[0]["start_utc"]) <= EVENT_WINDOW
            and (r["cause"] or "") == (last[0]["cause"] or "")
        ):
            last.append(r)
        else:
            groups.append([r])
    events = []
    rank = {"Country": 3, "Region": 2, "AS": 1}
    for g in groups:
        dur = [float(r["duration_h"]) for r in g if r["duration_h"] and not r.get("quality_flag")]
        scope = max((r["scope_level"] for r in g), key=lambda s: rank.get(s, 0))
        events.append(
            CuratedEvent(
                ids=[r["id"] for r in g],
                country=g[0]["country"],
                code=country_code(g[0]["country"]),
                start=min(parse_time(r["start_utc"]) for r in g),
                duration_h=max(dur) if dur else None,
                scope=scope,
                networks=sum(1 for r in g if r["scope_level"] == "AS"),
                all_visible=any(
                    r["bgp_visible"] == r["active_probing_visible"] == r["telescope_visible"] == "1" for r in g
                ),
                cause=g[0]["cause"].strip(),
            )
        )
    events.sort(key=lambda e: e.start)
    _features(events)
    return events


def _features(events: list[CuratedEvent]) -> None:
    """Fill each event's evidence items as pollwatch/attribute/evidence_*.py define them."""
    by_country: dict[str, list[datetime]] = {}
    for e in events:
        by_country.setdefault(e.country, []).append(e.start)
    for e in events:
        tz = country_timezone(e.code) if e.code else None
        f = dict.fromkeys(FEATURES + FIXED, 0.0)
        if tz is not None:
            where, _ = onset_alignment(e.start.astimezone(tz))
            f["onset_on_the_hour"] = float(where == "hour")
            f["onset_on_the_half_hour"] = float(where == "half_hour")
        f["all_signals_agree"] = float(e.all_visible)
        f["nationwide_scope"] = float(e.scope == "Country")
        f["single_network"] = float(e.scope == "AS" and e.networks == 1)
        f["providers_together"] = float(e.scope == "AS" and e.networks >= 2)
        earlier = [t for t in by_country[e.country] if t < e.start]
        f["recurrence_one_day"] = float(recurrence_days(e.start, earlier, RECURRENCE_TOLERANCE) is not None)
        if not f["recurrence_one_day"] and tz is not None:
            f["recurrence_same_time"] = float(same_time_days(e.start, earlier, tz) is not None)
        if tz is not None:
            f["recurring_schedule"] = float(schedule_episodes(e.start, earlier, tz) >= 2)
        # another country's nationwide outage within half an hour (a shared cable or upstream)
        f["other_countries_same_time"] = float(
            any(
                o.country != e.country and o.scope == "Country" and abs(o.start - e.start) <= SAME_TIME_WINDOW
                for o in events
            )
        )
        e.features = f


# --- fitting and scoring -----------------------------------------------------------------------


def fit(events: Sequence[CuratedEvent], l2: float = 1.0, iterations: int = 3000, rate: float = 0.5) -> dict[str, float]:
    """Logistic regression of government-directed (1) vs other known causes (0) on FEATURES,
    balanced class weights, the expert items as fixed offsets; returns weights incl. `bias`."""
    data = [(e.features, e.label) for e in events if e.label is not None]
    n1 = sum(1 for _, y in data if y == 1)
    n0 = len(data) - n1
    if not n1 or not n0:
        raise ValueError("calibration needs both government-directed and other known causes")
    cw = {1: len(data) / (2 * n1), 0: len(data) / (2 * n0)}
    w = dict.fromkeys(("bias",) + FEATURES, 0.0)
    total = sum(cw[y] for _, y in data)
    for _ in range(iterations):
        grad = dict.fromkeys(w, 0.0)
        for f, y in data:
            z = w["bias"] + sum(w[k] * f[k] for k in FEATURES) + sum(DEFAULT_WEIGHTS[k] * f[k] for k in FIXED)
            err = (sigmoid(z) - y) * cw[y]
            grad["bias"] += err
            for k in FEATURES:
                grad[k] += err * f[k]
        for k in w:
            reg = l2 * w[k] if k != "bias" else 0.0
            w[k] -= rate * (grad[k] + reg) / total
    return {k: round(v, 2) for k, v in w.items()}


def p_government(features: dict[str, float], weights: dict[str, float]) -> float:
    z = weights.get("bias", 0.0) + sum(weights.get(k, DEFAULT_WEIGHTS.get(k, 0.0)) * x for k, x in features.items())
    return sigmoid(z)


def balanced_accuracy(events: Sequence[CuratedEvent], weights: dict[str, float], threshold: float = 0.5) -> float:
    tp = fn = tn = fp = 0
    for e in events:
        if e.label is None:
            continue
        pred = p_government(e.features, weights) >= threshold
        if e.label == 1:
            tp += pred
            fn += not pred
        else:
            fp += pred
            tn += not pred
    tpr = tp / (tp + fn) if tp + fn else 0.0
    tnr = tn / (tn + fp) if tn + fp else 0.0
    return (tpr + tnr) / 2


def cross_validate(
    events: Sequence[CuratedEvent], folds: int = 5, repeats: int = 10, seed: int = 7, group_by_country: bool = False
) -> list[float]:
    """Balanced accuracy of fit-then-score on held-out folds (stratified by class; or whole countries held out)."""
    known = [e for e in events if e.label is not None]
    scores = []
    rng = random.Random(seed)
    for _ in range(1 if group_by_country else repeats):
        if group_by_country:
            countries = sorted({e.country for e in known})
            rng.shuffle(countries)
            fold_of = {c: i % folds for i, c in enumerate(countries)}
            assign = [fold_of[e.country] for e in known]
        else:
            assign = [0] * len(known)
            for label in (0, 1):
                idx = [i for i, e in enumerate(known) if e.label == label]
                rng.shuffle(idx)
                for j, i in enumerate(idx):
                    assign[i] = j % folds
        for k in range(folds):
            train = [e for e, a in zip(known, assign) if a != k]
            test = [e for e, a in zip(known, assign) if a == k]
            if not test or len({e.label for e in train}) < 2:
                continue
            w = fit(train, iterations=1500)
            if len({e.label for e in test}) == 2:
                scores.append(balanced_accuracy(test, w))
            else:  # a fold of one class: accuracy on it is its balanced accuracy's half
                scores.append(sum((p_government(e.features, w) >= 0.5) == bool(e.label) for e in test) / len(test))
    return scores


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    path = Path(args[0]) if args else default_csv()
    if path is None or not path.is_file():
        print(
            f"{path or CURATED}: not found (the curated list lives in ../shared/data/real/{CURATED})", file=sys.stderr
        )
        return 2
    events = read_events(path)
    known = [e for e in events if e.label is not None]
    w = fit(events)
    print(
        f"{len(events)} events ({len(known)} with a known cause: {sum(e.label == 1 for e in known)} "
        "government-directed)"
    )
    print("fitted weights (paste into CALIBRATED_WEIGHTS, pollwatch/attribute/weights.py):")
    for k, v in w.items():
        print(f"    {k!r}: {v},  # in code now: {CALIBRATED_WEIGHTS.get(k)}")
    print(
        f"in-sample balanced accuracy: fitted {balanced_accuracy(events, w):.3f}, in code "
        f"{balanced_accuracy(events, CALIBRATED_WEIGHTS):.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
