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
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pollwatch.baseline import compute_baselines  # noqa: E402
from pollwatch.models import Observation  # noqa: E402
from pollwatch.pipeline import WatchState, analyse  # noqa: E402
from pollwatch.playbook import Provider, find_watch, load_watch  # noqa: E402
from pollwatch.timeutil import tick_grid  # noqa: E402

SIGNALS = {"bgp": (5, 1.0, 0.001, 0.0), "active_probing": (10, 0.6, 0.015, 0.05), "telescope": (5, 40.0, 0.08, 0.15)}


def generate(entities: int, start: datetime, end: datetime, outages: list[tuple[int, datetime, datetime]], seed: int = 1) -> list[Observation]:
    rng = random.Random(seed)
    sizes = [rng.uniform(50, 2000) for _ in range(entities)]
    out: list[Observation] = []
    construct = Observation.model_construct
    for signal, (step_min, scale, noise, amp) in SIGNALS.items():
        step = timedelta(minutes=step_min)
        t = start
        while t < end:
            local_h = (t.hour + t.minute / 60 + 6) % 24
            d = 1 + amp * math.sin((local_h - 9) / 24 * 2 * math.pi)
            down = {a for a, s, e in outages if s <= t < e}
            for i in range(entities):
                v = sizes[i] * scale * d * (1 + rng.gauss(0, noise))
                if i in down:
                    v *= 0.05
                out.append(construct(time=t, source="ioda", signal=signal, country="KZ", region=None, asn=64512 + i, service=None,
                                     value=round(v, 3), count=None, provenance=None))
            t += step
    out.sort(key=lambda o: o.time)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entities", type=int, default=200)
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--watch-days", type=int, default=7)
    args = ap.parse_args()

    w = load_watch(find_watch("kz-2019-presidential"))
    w = w.model_copy(update={
        "providers": [Provider(asn=64512 + i, name=f"net{i}") for i in range(args.entities)],
        "signals": {k: v for k, v in w.signals.items() if k in SIGNALS},
    })
    watch_start = datetime(2024, 6, 1, tzinfo=timezone.utc)
    start = watch_start - timedelta(days=args.days)
    end = watch_start + timedelta(days=args.watch_days)
    outages = [(i * 17 % args.entities, watch_start + timedelta(hours=10 + 19 * i), watch_start + timedelta(hours=12 + 19 * i))
               for i in range(args.watch_days * 24 // 19)]
    t0 = time.perf_counter()
    obs = generate(args.entities, start, end, outages)
    history = [o for o in obs if o.time < watch_start]
    print(f"generated {len(obs):,} observations ({args.entities} entities x {len(SIGNALS)} signals, {args.days} + {args.watch_days} days)"
          f" in {time.perf_counter() - t0:.1f} s (not timed)")

    t1 = time.perf_counter()
    baselines = compute_baselines(w, history, watch_start)
    t_baseline = time.perf_counter() - t1
    print(f"baseline phase: {len(baselines)} baselines ({sum(b.usable for b in baselines)} usable) from {len(history):,} points"
          f" in {t_baseline:.1f} s")

    longest = max(s.window + s.warm_up for s in w.signals.values())
    feed = [o for o in obs if o.time >= watch_start - longest]
    ticks = [t for t in tick_grid(watch_start, end, timedelta(minutes=5)) if t < end]
    t2 = time.perf_counter()
    out = analyse(w, None, ticks, feed)
    t_watch = time.perf_counter() - t2
    judged = len(feed)
    print(f"watch replay: {len(ticks)} ticks, {judged:,} points judged (history window {longest} included),"
          f" {len(out.anomalies)} anomalies, {len(out.incidents)} incidents (injected {len(outages)} network outages)"
          f" in {t_watch:.1f} s ({t_watch / judged * 1e6:.1f} us/point)")
    total = t_baseline + t_watch

    # live: a few hours of ticks, state loaded from and saved to JSON each time
    day0 = watch_start + timedelta(days=1)
    warm = analyse(w, None, [day0], [o for o in feed if o.time <= day0])
    state_json = json.dumps(warm.state.model_dump(mode="json"))
    times = [o.time for o in obs]
    import bisect

    live_ticks = ticks[bisect.bisect_left(ticks, day0) + 1:][:24]
    t3 = time.perf_counter()
    sizes = []
    for tick in live_ticks:
        state = WatchState.model_validate_json(state_json)
        lo, hi = bisect.bisect_left(times, tick - timedelta(minutes=10)), bisect.bisect_right(times, tick)
        res = analyse(w, state, [tick], obs[lo:hi])
        state_json = json.dumps(res.state.model_dump(mode="json"))
        sizes.append(len(state_json))
    per_tick = (time.perf_counter() - t3) / max(len(live_ticks), 1)
    print(f"live ticks: {per_tick:.2f} s per tick including JSON state load/save ({sizes[-1] / 1e6:.1f} MB state,"
          f" {sizes[-1] / (args.entities * len(SIGNALS) + 1) / 1e3:.1f} kB per series)")
    print(f"total (baseline + watch replay): {total:.1f} s")
    print(f"RESULT name=replay figure={total:.1f}s goal=<60s met={'yes' if total < 60 else 'no'}")
    print(f"RESULT name=replay_live_tick figure={per_tick:.2f}s goal=<300s_cadence met={'yes' if per_tick < 300 else 'no'}")


if __name__ == "__main__":
    main()
