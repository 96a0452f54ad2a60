"""Live operation against a replay: generated small watches under random tick schedules (issue 14's goals).

Each scenario is a watch of 1-3 providers (the KZ watch cut down: tests/fakes/watches.py) in a country
where networks the watch does not list hold 55-70 % of the address space, with 1-3 events on
election day (one network, one region or the whole country dark; WhatsApp or Tor blocked), each
of which recovers. It runs as a replay and under 3 random tick schedules (late, missed and repeated
ticks, a first tick hours in; one schedule has a catch-up of 4-8 h) through the same code a live
tick uses without Prefect (`pollwatch.pipeline.run_ticks`). Prints:

- false nationwide: nationwide incidents overlapping no nationwide event (replays and schedules);
- merged: incidents overlapping more than one event of their family;
- differences: schedule incidents that differ from the replay's (kind, scope, or a start or end
  more than one native step apart), and incidents one has and the other has not;
- recovery delay (native steps of the event's signal): from the data showing the recovery (every
  affected series has a point with enough measurements at or after the event's end, and it is
  visible) to the incident's resolution, p95; an unresolved incident counts until the data ends;
- start error (native steps): |incident start - the first point with enough data showing the event|
  (the injected start too, for comparison; hourly OONI bins with under `min_count` tests show
  nothing), p95.

    python bench/operations.py [--scenarios 40] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pollwatch.baseline import baselined  # noqa: E402
from pollwatch.evaluate import KIND_FAMILY  # noqa: E402
from pollwatch.models import Incident, IncidentEvent, IncidentKind  # noqa: E402
from pollwatch.pipeline import analyse, judgement_times, latest_incidents, run_ticks  # noqa: E402
from pollwatch.playbook import PLAYBOOKS_DIR, Watch, load_watch  # noqa: E402
from pollwatch.simulate import EventSpec, Label, Scenario, simulate  # noqa: E402
from pollwatch.timeutil import floor_time  # noqa: E402
from tests.fakes.watches import small_watch  # noqa: E402

H = timedelta(hours=1)
CADENCE = timedelta(minutes=5)
KINDS = [
    IncidentKind.network_outage,
    IncidentKind.regional_outage,
    IncidentKind.nationwide_outage,
    IncidentKind.service_block,
    IncidentKind.circumvention_block,
]


def result(name: str, figure: object, goal: str, met: bool) -> None:
    print(f"RESULT name={name} figure={figure} goal={goal} met={'yes' if met else 'no'}")


def p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def events_for(w: Watch, day: datetime, rng: random.Random) -> list[EventSpec]:
    """1-3 events on election day, apart from each other by at least 2 h, every one ending by 13:00."""
    out: list[EventSpec] = []
    t = day + rng.randint(2, 4) * H + rng.randint(0, 11) * CADENCE
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(KINDS)
        hourly = kind in (IncidentKind.service_block, IncidentKind.circumvention_block)
        length = rng.randint(2, 4) * H if hourly else rng.randint(4, 18) * CADENCE
        end = t + length
        if end > day + 13 * H:
            break
        kw: dict = {}
        if kind is IncidentKind.network_outage:
            kw["asns"] = [rng.choice(w.providers).asn]
        elif kind is IncidentKind.regional_outage:
            kw["regions"] = [rng.choice(w.regions).code]
        elif kind is IncidentKind.service_block:
            kw.update(services=["whatsapp"], depth=0.9)
        elif kind is IncidentKind.circumvention_block:
            kw.update(services=["tor"], depth=0.9)
        out.append(EventSpec(kind=kind, start=t, end=end, **kw))
        t = end + rng.randint(2, 4) * H + rng.randint(0, 11) * CADENCE
    return out


def schedule(day: datetime, end: datetime, rng: random.Random, catch_up: bool) -> list[datetime]:
    """Tick times in the order they run: a first tick 0-3 h in, ticks 5-30 min apart, some repeated or run late
    after a later one, and (catch_up) one pause of 4-8 h somewhere in the day; always a last tick at `end`."""
    t = day + rng.randint(0, 36) * CADENCE
    out = [t]
    pause_at = day + rng.randint(1, 6) * H if catch_up else None
    while t < end:
        if pause_at is not None and t >= pause_at:
            t += rng.randint(48, 96) * CADENCE
            pause_at = None
        else:
            t += rng.choice([1, 1, 2, 3, 6]) * CADENCE
        roll = rng.random()
        if roll < 0.05:
            out.append(out[-1])  # the same tick twice
        elif roll < 0.1:
            out.append(out[-1] - CADENCE)  # a late run of an older tick
        out.append(min(t, end))
    return out


def step_of(w: Watch, kind: IncidentKind) -> timedelta:
    return w.signals["bgp" if KIND_FAMILY[kind].value == "connectivity" else "service_failure_rate"].step


def shown(w: Watch, sc: Scenario, label: Label) -> tuple[datetime, datetime]:
    """When the data shows the event: its start, the first usable point (enough measurements) of an affected series
    in the native step of the event's start or after; its end, when every affected series has a usable point at or
    after the event's end, at the time that point is visible (the point's time plus the signal's lag)."""
    connectivity = KIND_FAMILY[label.kind].value == "connectivity"
    signal = "bgp" if connectivity else "service_failure_rate"
    cfg = w.signals[signal]
    first = floor_time(label.start, cfg.step)
    starts: list[datetime] = []
    ends: dict[str, datetime] = {}
    for o in sc.observations:
        if (
            o.signal != signal
            or o.value is None
            or o.time < first
            or (cfg.min_count and (o.count or 0) < cfg.min_count)
        ):
            continue
        if connectivity and not (
            label.kind is IncidentKind.nationwide_outage
            and o.entity_key == o.country
            or o.asn in label.asns
            and o.region is None
            or o.region in label.regions
            and o.asn is None
        ):
            continue
        if not connectivity and (o.service not in label.services or o.asn is None):
            continue
        if o.time < label.end:
            starts.append(o.time)
        else:
            ends.setdefault(o.entity_key, o.time + cfg.lag)
    return min(starts, default=label.start), max(ends.values(), default=sc.end)


def score(w: Watch, sc: Scenario, events: list[IncidentEvent], until: datetime, m: dict) -> list[Incident]:
    incidents = latest_incidents(events)
    resolved = {e.incident.id: e.tick for e in events if e.change == "resolved"}
    for inc in incidents:
        hits = [
            lb
            for lb in sc.labels
            if KIND_FAMILY[lb.kind] is inc.family and inc.start <= lb.end and (inc.end or until) >= lb.start
        ]
        if inc.kind is IncidentKind.nationwide_outage and not any(
            lb.kind is IncidentKind.nationwide_outage for lb in hits
        ):
            m["false_nationwide"] += 1
            m["examples"].append(
                f"false nationwide {sc.seed}: {inc.start:%H:%M} {inc.scope.asns} {inc.scope.regions} share "
                f"{inc.scope.share}"
            )
        if len(hits) > 1:
            m["merged"] += 1
            m["examples"].append(
                f"merged {sc.seed}: {inc.kind.value} {inc.start:%H:%M} <- {[lb.kind.value for lb in hits]}"
            )
        for lb in hits[:1]:
            step = step_of(w, lb.kind)
            data_start, data_end = shown(w, sc, lb)
            m["start"].append(abs((inc.start - data_start) / step))
            m["start_event"].append(abs((inc.start - lb.start) / step))
            m["recovery"].append(max(0.0, ((resolved.get(inc.id) or until) - data_end) / step))
            m["by_kind"].setdefault(lb.kind.value, []).append((m["start"][-1], m["recovery"][-1]))
    m["missed"] += sum(
        1
        for lb in sc.labels
        if not any(
            KIND_FAMILY[lb.kind] is i.family and i.start <= lb.end and (i.end or until) >= lb.start for i in incidents
        )
    )
    return incidents


def differences(w: Watch, live: list[Incident], replay: list[Incident]) -> int:
    """Incidents of one without a match in the other (same kind and scope, start and end within one native step)."""

    def near(a: datetime | None, b: datetime | None, step: timedelta) -> bool:
        return (a is None) == (b is None) and (a is None or abs(a - b) <= step)  # type: ignore[operator]

    def same(a: Incident, b: Incident) -> bool:
        step = step_of(w, a.kind) if a.kind in KIND_FAMILY else CADENCE
        return (
            (a.kind, a.scope.asns, a.scope.regions, a.scope.services)
            == (b.kind, b.scope.asns, b.scope.regions, b.scope.services)
            and near(a.start, b.start, step)
            and near(a.end, b.end, step)
        )

    unmatched = list(replay)
    diff = 0
    for a in live:
        b = next((x for x in unmatched if same(a, x)), None)
        if b is None:
            diff += 1
        else:
            unmatched.remove(b)
    return diff + len(unmatched)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    began = time.perf_counter()
    kz = load_watch(PLAYBOOKS_DIR / "watches" / "kz-2019-presidential.yaml")
    m: dict = {
        "false_nationwide": 0,
        "merged": 0,
        "differences": 0,
        "missed": 0,
        "start": [],
        "recovery": [],
        "examples": [],
        "runs": 0,
        "labels": 0,
        "by_kind": {},
        "start_event": [],
    }
    for i in range(args.scenarios):
        seed = args.seed * 1000 + i
        rng = random.Random(seed)
        w = small_watch(1 + i % 3, kz)
        day = w.at_offset(timedelta(0))
        end = day + 16 * H
        events = events_for(w, day, rng)
        sc = simulate(w, day - 30 * H, end, events, seed=seed, other_space=rng.uniform(0.55, 0.7))
        w = baselined(w, sc.observations, day)  # the baseline flow's address shares, from the day before
        m["labels"] += len(sc.labels)
        replay = score(
            w, sc, analyse(w, None, judgement_times(w, sc.start, end) + [end], sc.observations).events, end, m
        )
        for k in range(3):
            ticks = schedule(day, end, rng, catch_up=k == 0)
            live = score(w, sc, run_ticks(w, sc.observations, ticks), end, m)
            d = differences(w, live, replay)
            m["differences"] += d
            if d:
                m["examples"].append(
                    f"differs {seed} schedule {k}: live {[(x.kind.value, f'{x.start:%H:%M}') for x in live]} "
                    f"replay {[(x.kind.value, f'{x.start:%H:%M}') for x in replay]}"
                )
        m["runs"] += 4
        print(f"scenario {seed}: {len(w.providers)} provider(s), {[lb.kind.value for lb in sc.labels]}", flush=True)
    for line in m["examples"][:20]:
        print("  ", line)
    for kind, pairs in sorted(m["by_kind"].items()):
        print(
            f"  {kind:<20} start error p95 {p95([a for a, _ in pairs]):.2f} max {max(a for a, _ in pairs):.2f}, "
            f"recovery delay p95 {p95([b for _, b in pairs]):.2f} max {max(b for _, b in pairs):.2f} native steps "
            f"({len(pairs)})"
        )
    rec, start = p95(m["recovery"]), p95(m["start"])
    print(
        f"{args.scenarios} scenarios, {m['labels']} events, {m['runs']} runs (replay + 3 schedules each), "
        f"{m['missed']} event-runs missed, in {time.perf_counter() - began:.0f} s"
    )
    print(
        f"false nationwide {m['false_nationwide']}, merged {m['merged']}, differences from the replay "
        f"{m['differences']}, "
        f"recovery delay p95 {rec:.2f} native steps (max {max(m['recovery'], default=0):.2f}), "
        f"start error p95 {start:.2f} native steps (max {max(m['start'], default=0):.2f}; from the injected start "
        "rather "
        f"than the data's: p95 {p95(m['start_event']):.2f})"
    )
    result("ops_false_nationwide", m["false_nationwide"], "0", m["false_nationwide"] == 0)
    result("ops_merged_incidents", m["merged"], "0", m["merged"] == 0)
    result("ops_schedule_differences", m["differences"], "0", m["differences"] == 0)
    result("ops_recovery_delay_p95_steps", round(rec, 2), "<=2", rec <= 2)
    result("ops_start_error_p95_steps", round(start, 2), "<=1", start <= 1)


if __name__ == "__main__":
    main()
