"""Speed of baselining and detection at scale: a 28-day baseline plus a 7-day watch at 5-minute
cadence for 200 entities x 3 IODA signals (bgp 5 min, active_probing 10 min, telescope 5 min).

Timed: (1) the baseline phase over 28 days of history (compute_baselines); (2) the 7-day watch
replayed through the analysis stages (detect, classify, attribute, alerts) at 5-minute ticks,
with the detectors warming up on the history window that precedes the watch; (3) a day of live
ticks, each loading and saving the whole watch state as JSON (what the store keeps), to show a
tick costs O(new data). Data generation is not timed. Prints figures, then RESULT lines.

    python bench/replay.py [--entities 200] [--days 28] [--watch-days 7]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pollwatch.baseline import compute_baselines  # noqa: E402
from pollwatch.models import Observation  # noqa: E402
from pollwatch.pipeline import WatchState, analyse  # noqa: E402
from pollwatch.playbook import Provider, find_watch, load_watch  # noqa: E402
from pollwatch.timeutil import tick_grid  # noqa: E402

SIGNALS = {"bgp": (5, 1.0, 0.001, 0.0), "active_probing": (10, 0.6, 0.015, 0.05), "telescope": (5, 40.0, 0.08, 0.15)}


class Data:
    """Raw values per (signal, entity) on each signal's grid (compact); Observations are built per
    chunk, as a store query would return them, so memory stays bounded."""

    def __init__(
        self,
        entities: int,
        start: datetime,
        end: datetime,
        outages: list[tuple[int, datetime, datetime]],
        seed: int = 1,
    ):
        rng = random.Random(seed)
        self.start, self.entities = start, entities
        sizes = [rng.uniform(50, 2000) for _ in range(entities)]
        self.values: dict[str, list[list[float]]] = {}
        for signal, (step_min, scale, noise, amp) in SIGNALS.items():
            step = timedelta(minutes=step_min)
            n = int((end - start) / step)
            rows = []
            for k in range(n):
                t = start + k * step
                local_h = (t.hour + t.minute / 60 + 6) % 24
                d = 1 + amp * math.sin((local_h - 9) / 24 * 2 * math.pi)
                down = {a for a, s, e in outages if s <= t < e}
                gauss = rng.gauss
                rows.append(
                    [
                        round(sizes[i] * scale * d * (1 + gauss(0, noise)) * (0.05 if i in down else 1.0), 3)
                        for i in range(entities)
                    ]
                )
            self.values[signal] = rows

    def points(self) -> int:
        return sum(len(rows) * self.entities for rows in self.values.values())

    def observations(self, t_from: datetime, t_to: datetime) -> Iterator[Observation]:
        construct = Observation.model_construct
        for signal, (step_min, *_rest) in SIGNALS.items():
            step = timedelta(minutes=step_min)
            rows = self.values[signal]
            k0 = max(0, math.ceil((t_from - self.start) / step))
            k1 = min(len(rows), math.ceil((t_to - self.start) / step))
            for k in range(k0, k1):
                t = self.start + k * step
                for i, v in enumerate(rows[k]):
                    yield construct(
                        time=t,
                        source="ioda",
                        signal=signal,
                        country="KZ",
                        region=None,
                        asn=64512 + i,
                        service=None,
                        value=v,
                        count=None,
                        provenance=None,
                    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entities", type=int, default=200)
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--watch-days", type=int, default=7)
    args = ap.parse_args()

    w = load_watch(find_watch("kz-2019-presidential"))
    w = w.model_copy(
        update={
            "providers": [Provider(asn=64512 + i, name=f"net{i}") for i in range(args.entities)],
            "signals": {k: v for k, v in w.signals.items() if k in SIGNALS},
        }
    )
    watch_start = datetime(2024, 6, 1, tzinfo=timezone.utc)
    start = watch_start - timedelta(days=args.days)
    end = watch_start + timedelta(days=args.watch_days)
    outages = [
        (i * 17 % args.entities, watch_start + timedelta(hours=10 + 19 * i), watch_start + timedelta(hours=12 + 19 * i))
        for i in range(args.watch_days * 24 // 19)
    ]
    t0 = time.perf_counter()
    data = Data(args.entities, start, end, outages)
    print(
        f"generated {data.points():,} values ({args.entities} entities x {len(SIGNALS)} signals, {args.days} + "
        f"{args.watch_days} days)"
        f" in {time.perf_counter() - t0:.1f} s (not timed)"
    )

    # the baseline phase reads each signal's window from the history (as flows/baseline.py fetches it)
    history_from = watch_start - max(s.window for s in w.signals.values())
    wall, cpu = time.perf_counter(), time.process_time()
    baselines = compute_baselines(w, data.observations(history_from, watch_start), watch_start)
    t_baseline, c_baseline = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"baseline phase: {len(baselines)} baselines ({sum(b.usable for b in baselines)} usable) from"
        f" the last {watch_start - history_from} of {args.days} days of history"
        f" in {t_baseline:.1f} s wall, {c_baseline:.1f} s CPU"
    )

    # the watch: the detectors warm up on the longest window before it (what a first tick loads),
    # then 5-minute ticks; fed one day at a time with the state carried over (bounded memory)
    longest = max(s.window + s.warm_up for s in w.signals.values())
    wall, cpu = time.perf_counter(), time.process_time()
    state: WatchState | None = None
    known: dict = {}
    fed = anomalies = 0
    incidents: dict = {}
    ticks_total = 0
    t = watch_start - longest
    while t < end:
        nxt = min(t + timedelta(days=1), end)
        chunk = list(data.observations(t, nxt))
        fed += len(chunk)
        ticks = (
            [x for x in tick_grid(max(t, watch_start), nxt, timedelta(minutes=5)) if x < nxt]
            if nxt > watch_start
            else [nxt - timedelta(seconds=1)]
        )
        ticks_total += len(ticks) if nxt > watch_start else 0
        out = analyse(w, state, ticks, chunk, known)
        state = out.state
        anomalies += len(out.anomalies)
        incidents.update({i.id: i for i in out.incidents})
        known.update({i.id: i for i in out.incidents})
        t = nxt
    t_watch, c_watch = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"watch: {ticks_total} ticks of 5 min over {args.watch_days} days, {fed:,} points judged (warm-up window "
        f"{longest} included),"
        f" {len(incidents)} incidents (injected {len(outages)} network outages) in {t_watch:.1f} s wall, "
        f"{c_watch:.1f} s CPU"
        f" ({c_watch / fed * 1e6:.1f} us CPU/point)"
    )

    # live: ticks that each load and save the whole watch state as JSON
    assert state is not None
    state_json = json.dumps(state.model_dump(mode="json"))
    live_ticks = [end + timedelta(minutes=5 * k) for k in range(1, 7)]
    extra = Data(args.entities, end, end + timedelta(hours=1), [], seed=2)
    wall_l, cpu_l = time.perf_counter(), time.process_time()
    for tick in live_ticks:
        st = WatchState.model_validate_json(state_json)
        res = analyse(
            w, st, [tick], list(extra.observations(tick - timedelta(minutes=10), tick + timedelta(seconds=1))), known
        )
        state_json = json.dumps(res.state.model_dump(mode="json"))
    per_tick = (time.perf_counter() - wall_l) / len(live_ticks)
    per_tick_cpu = (time.process_time() - cpu_l) / len(live_ticks)
    n_series = args.entities * len(SIGNALS)
    print(
        f"live tick: {per_tick:.2f} s wall ({per_tick_cpu:.2f} s CPU) including loading and saving the JSON state of"
        f" {len(state_json) / 1e6:.1f} MB ({len(state_json) / n_series / 1e3:.1f} kB per series)"
    )
    total, total_cpu = t_baseline + t_watch, c_baseline + c_watch
    print(
        f"total (baseline + watch): {total:.1f} s wall, {total_cpu:.1f} s CPU; load average now "
        f"{os.getloadavg()[0]:.1f}"
        " on this machine (wall time includes other users' work)"
    )
    print(f"RESULT name=replay figure={total_cpu:.1f}s_cpu goal=<60s met={'yes' if total_cpu < 60 else 'no'}")
    print(f"RESULT name=replay_wall figure={total:.1f}s goal=<60s met={'yes' if total < 60 else 'no'}")
    print(f"RESULT name=replay_live_tick figure={per_tick:.2f}s goal=<300s met={'yes' if per_tick < 300 else 'no'}")


if __name__ == "__main__":
    main()
