"""What a watch costs the observatories: OONI and IODA requests per watch-day at election-day cadence.

Runs the Kazakhstan watch's ticks for one day (the template's heightened cadence, 5 min) the way
`flows/watch_tick.py` collects them: each tick asks every source from its last tick less the
signal's lag and one cadence (`pipeline.TickWindows`), against the fakes, and counts the requests
each fake received. Prints per source the requests per watch-day and the OONI requests that asked
for nothing new (every hour the tick needed had been fetched complete before), then RESULT lines.

    python bench/source_budget.py [--day 2019-06-09] [--cadence 5m] [--code DIR]

`--code DIR` measures another checkout's pollwatch (e.g. main before a change) with this script.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEFORE_OONI = 3168  # measured with this script on the code before issue 15 (every tick asked every test for whole days)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--day", default="2019-06-09")
    ap.add_argument("--cadence", default="5m")
    ap.add_argument("--code", default=str(ROOT), help="the checkout whose pollwatch is measured")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))  # tests.fakes from this checkout
    sys.path.insert(0, str(Path(args.code).resolve()))
    os.environ["POLLWATCH_HOME"] = tempfile.mkdtemp(prefix="pollwatch-budget-")  # a fresh cache, as on a new machine

    from tests.fakes.observatories import IodaFake, OoniFake, fast_config

    from pollwatch.pipeline import TickWindows
    from pollwatch.playbook import find_watch, load_watch
    from pollwatch.sources import make_source
    from pollwatch.timeutil import parse_duration

    watch = load_watch(find_watch("kz-2019-presidential"))
    cadence = parse_duration(args.cadence)
    day = datetime.fromisoformat(args.day).replace(tzinfo=timezone.utc)
    ticks = []
    t = day
    while t < day + timedelta(days=1):
        ticks.append(t + cadence)
        t += cadence

    import pollwatch.sources.ooni as ooni_mod

    clock = [ticks[0]]
    if hasattr(ooni_mod, "now_utc"):  # the live clock: at each tick, "now" is the tick (hours settle as they would)
        ooni_mod.now_utc = lambda: clock[0]

    with IodaFake() as ioda, OoniFake() as ooni:
        fakes = {"ioda": ioda, "ooni": ooni}
        sources = {
            name: make_source(name, watch, config=fast_config(fake.url, retries=0, timeout=timedelta(seconds=10)))
            for name, fake in fakes.items()
        }
        per_tick: dict[str, list[int]] = {name: [] for name in fakes}
        began = time.perf_counter()
        last = ticks[0] - cadence
        for tick in ticks:
            clock[0] = tick
            windows = TickWindows.of(watch, last, tick, cadence)
            for name, src in sources.items():
                before = len(fakes[name].requests)
                res = asyncio.run(src.collect(watch, windows.for_source(name, watch), tick))
                per_tick[name].append(len(fakes[name].requests) - before)
                if res.failed_requests:
                    print(f"warning: {name} at {tick:%H:%M}: {res.failed_requests} failed request(s)", file=sys.stderr)
            last = tick
        seconds = time.perf_counter() - began

    print(
        f"Kazakhstan watch ({len(watch.providers)} networks, {len(watch.services) + len(watch.circumvention)} "
        "services, "
        f"{len(watch.regions)} regions), {len(ticks)} ticks at {args.cadence} on {args.day}, pollwatch from {args.code}"
    )
    for name, counts in per_tick.items():
        busy = Counter(counts)
        print(f"  {name}: {sum(counts)} requests per watch-day; ticks by requests: {dict(sorted(busy.items()))}")
    print(f"  ({seconds:.1f} s)")
    # issue 15: at least 5x fewer OONI calls than the 3,168 a day each tick re-reading its days cost
    ooni_goal = BEFORE_OONI // 5
    print(
        f"RESULT name=ooni_requests_per_watch_day figure={sum(per_tick['ooni'])} goal=<={ooni_goal} "
        f"met={'yes' if sum(per_tick['ooni']) <= ooni_goal else 'no'}"
    )
    print(f"RESULT name=ioda_requests_per_watch_day figure={sum(per_tick['ioda'])} goal=report met=yes")


if __name__ == "__main__":
    main()
