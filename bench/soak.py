"""Soak: many simulated days of live ticks with flapping sources; memory, state and database stay bounded.

Every tick (default every minute for 14 simulated days) does what a live watch tick does, minus
Prefect: it takes the observations that became visible since the previous tick, runs the stages
(pollwatch.pipeline.analyse) on the watch state *loaded from JSON*, writes the state back as JSON,
and records observations, anomalies, incidents, gaps, the state and the tick in a SQLite store
(batched: every `--db-every` ticks in one transaction, a tick row per tick).
Sources flap: in a random 15% of series-hours every other point has no value, IODA goes silent for
45 minutes and OONI for an hour every day. No event is injected, so every incident is a false one.

Once per simulated day it prints the resident memory, the state's JSON size and the database's
size; at the end, RESULT lines (collected by bench/run_all.py). Runtime is bounded by `--budget`
(seconds): when it runs out, the soak stops and says how many days it managed.

    python bench/soak.py                      # 14 days, 1-minute ticks, a slim KZ watch, SQLite store
    python bench/soak.py --full --budget 1800 # the whole KZ watch (about 5x the work per tick)
    python bench/soak.py --days 3 --no-db     # a quick look
"""

from __future__ import annotations

import argparse
import bisect
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pollwatch.models import Incident, Observation  # noqa: E402
from pollwatch.pipeline import WatchState, analyse  # noqa: E402
from pollwatch.playbook import PLAYBOOKS_DIR, Watch, load_watch  # noqa: E402
from pollwatch.simulate import simulate  # noqa: E402

MB = 1024 * 1024


def rss_mb() -> float:
    """Resident memory now (Linux /proc), in MB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def slim(watch: Watch) -> Watch:
    """A smaller watch (2 providers, 2 regions, 2 services, 1 circumvention tool) for quick runs."""
    return watch.model_copy(
        update={
            "providers": watch.providers[:2],
            "regions": watch.regions[:2],
            "services": watch.services[:2],
            "circumvention": watch.circumvention[:1],
        }
    )


def flapping_day(watch: Watch, day: datetime, seed: int) -> list[Observation]:
    """One simulated day of observations with flapping series and daily source silences."""
    obs = simulate(watch, day, day + timedelta(days=1), [], seed=seed).observations
    rng = random.Random(f"{seed}:{day.isoformat()}")
    ioda_off = day + timedelta(minutes=rng.randrange(0, 23 * 60))
    ooni_off = day + timedelta(minutes=rng.randrange(0, 23 * 60))
    flapping: dict[tuple[str, int], bool] = {}
    out = []
    for o in obs:
        hour = o.time.hour
        key = (o.series_key, hour)
        if key not in flapping:
            flapping[key] = rng.random() < 0.15
        silent = (o.source == "ioda" and ioda_off <= o.time < ioda_off + timedelta(minutes=45)) or (
            o.source == "ooni" and ooni_off <= o.time < ooni_off + timedelta(hours=1)
        )
        toggled = flapping[key] and (o.time.minute // 5) % 2 == 1
        out.append(o.model_copy(update={"value": None}) if silent or toggled else o)
    return out


def db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=float, default=14.0, help="simulated days (default 14)")
    ap.add_argument("--cadence", type=float, default=1.0, help="minutes between ticks (default 1)")
    ap.add_argument("--watch", default=str(PLAYBOOKS_DIR / "watches" / "kz-2019-presidential.yaml"))
    ap.add_argument(
        "--full", action="store_true", help="the whole watch (default: a slim copy, 2 providers/regions/services)"
    )
    ap.add_argument("--no-db", action="store_true", help="do not write to a SQLite store")
    ap.add_argument(
        "--db-every",
        type=int,
        default=240,
        help="write to the store every N ticks in one transaction, with a tick row per tick (default 240; 1 = "
        "every tick)",
    )
    ap.add_argument(
        "--budget", type=float, default=170.0, help="stop after this many seconds of wall time (default 170)"
    )
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    watch = load_watch(args.watch)
    if not args.full:
        watch = slim(watch)
    start = watch.at_offset(timedelta(days=-20))
    cadence = timedelta(minutes=args.cadence)
    n_ticks = int(args.days * 86400 / cadence.total_seconds())
    ticks_per_day = int(86400 / cadence.total_seconds())

    tmp = Path(tempfile.mkdtemp(prefix="pollwatch-soak-"))
    db_path = tmp / "pollwatch.sqlite"
    url = f"sqlite:///{db_path}"
    store = None
    if not args.no_db:
        from pollwatch import store as _store

        store = _store
        store.get_engine(url)

    print(
        f"soak: {watch.name}{'' if args.full else ' (slim)'}, {args.days:g} days at {args.cadence:g}-minute ticks "
        f"({n_ticks} ticks), store: {'none' if store is None else db_path}, budget {args.budget:.0f} s"
    )
    print(
        f"{'day':>4} {'ticks':>6} {'wall s':>7} {'tick ms':>8} {'rss MB':>7} {'state KB':>9} {'db MB':>7} "
        f"{'obs':>8} {'gaps':>6} {'incidents':>9}"
    )

    began = time.perf_counter()
    state_json = ""
    known: dict[str, Incident] = {}
    all_incidents: dict[str, Incident] = {}
    gaps = observations_total = 0
    tick_seconds: list[float] = []
    per_day: list[dict[str, float]] = []
    day_obs: list[Observation] = []
    day_times: list[datetime] = []
    loaded_day: datetime | None = None
    prev: datetime | None = None
    done = 0
    pending: list = []
    db_seconds = sim_seconds = 0.0
    for i in range(n_ticks):
        tick = start + (i + 1) * cadence
        day0 = start + timedelta(days=int((tick - start) / timedelta(days=1)))
        if loaded_day != day0:  # one simulated day at a time keeps the input's memory flat
            t_sim = time.perf_counter()
            day_obs = flapping_day(watch, day0, args.seed)
            sim_seconds += time.perf_counter() - t_sim
            day_times = [o.time for o in day_obs]
            loaded_day = day0
        lo = bisect.bisect_right(day_times, prev) if prev and prev >= day0 else 0
        visible = day_obs[lo : bisect.bisect_right(day_times, tick)]
        prev = tick

        t0 = time.perf_counter()
        loaded = WatchState.model_validate_json(state_json) if state_json else None  # as the store keeps it
        out = analyse(watch, loaded, [tick], visible, known)
        state_json = out.state.model_dump_json()
        for inc in out.incidents:
            all_incidents[inc.id] = inc
        known = {k: all_incidents[k] for k in out.state.grouper.incidents if k in all_incidents}
        tick_seconds.append(time.perf_counter() - t0)
        if store is not None:
            pending.append((tick, visible, out))
            if len(pending) >= args.db_every or i + 1 == n_ticks:
                t1 = time.perf_counter()
                with store.session_scope(url) as s:  # what the batched ticks would have written, in one transaction
                    for t, vis, o in pending:
                        store.upsert_observations(s, vis)
                        store.save_anomalies(s, o.anomalies)
                        store.save_incidents(s, o.incidents)
                        store.add_gaps(s, watch.name, o.gaps)
                        store.mark_tick_done(s, watch.name, t, None, {"observations": len(vis)})
                    store.save_watch_state(s, watch.name, pending[-1][2].state.model_dump(mode="json"), pending[-1][0])
                db_seconds += time.perf_counter() - t1
                pending.clear()
        gaps += len(out.gaps)
        observations_total += len(visible)
        done = i + 1

        last = done == n_ticks
        over = time.perf_counter() - began > args.budget
        if done % ticks_per_day == 0 or last or over:
            row = {
                "day": done / ticks_per_day,
                "wall": time.perf_counter() - began,
                "tick_ms": 1000 * statistics.fmean(tick_seconds[-ticks_per_day:]),
                "rss": rss_mb(),
                "state_kb": len(state_json) / 1024,
                "db_mb": db_bytes(db_path) / MB if store is not None else 0.0,
            }
            per_day.append(row)
            print(
                f"{row['day']:>4.1f} {done:>6} {row['wall']:>7.1f} {row['tick_ms']:>8.1f} {row['rss']:>7.1f} "
                f"{row['state_kb']:>9.1f} {row['db_mb']:>7.1f} {observations_total:>8} {gaps:>6} "
                f"{len(all_incidents):>9}"
            )
        if over and not last:
            print(f"budget of {args.budget:.0f} s spent after {done} ticks ({done / ticks_per_day:.2f} simulated days)")
            break

    days_done = done / ticks_per_day
    peak = peak_rss_mb()
    # bounded = no growth once the longest detector window is full (before that, history fills up by design)
    full_after = max(c.window for c in watch.signals.values()).total_seconds() / 86400 + 1
    steady = [r for r in per_day if r["day"] >= full_after]
    if len(steady) >= 2:
        rss_growth = (steady[-1]["rss"] - steady[0]["rss"]) / steady[0]["rss"]
        state_growth = (steady[-1]["state_kb"] - steady[0]["state_kb"]) / steady[0]["state_kb"]
        steady_note = f"from day {steady[0]['day']:g} to day {steady[-1]['day']:g}"
    else:
        rss_growth = state_growth = float("nan")
        steady_note = f"n/a (windows full after day {full_after:g}; ran {days_done:.1f} days)"
    db_per_day = (per_day[-1]["db_mb"] / days_done) if days_done and store is not None else 0.0
    print(
        f"growth once the windows are full {steady_note}: rss {100 * rss_growth:+.1f}%, state "
        f"{100 * state_growth:+.1f}%"
    )
    mean_ms = 1000 * statistics.fmean(tick_seconds)
    p99_ms = 1000 * sorted(tick_seconds)[int(0.99 * (len(tick_seconds) - 1))]
    print(
        f"{done} ticks in {time.perf_counter() - began:.1f} s: mean {mean_ms:.1f} ms, p99 {p99_ms:.1f} ms per tick; "
        f"peak RSS {peak:.0f} MB; state {per_day[-1]['state_kb']:.0f} KB; db {per_day[-1]['db_mb']:.1f} MB "
        f"({db_per_day:.1f} MB/day, {db_seconds:.1f} s writing, {sim_seconds:.1f} s simulating input); "
        f"{len(all_incidents)} incidents (none injected), {gaps} gaps"
    )

    def result(name: str, figure: str, goal: str, met: bool) -> None:
        print(f"RESULT name={name} figure={figure} goal={goal} met={'yes' if met else 'no'}")

    result("soak_days", f"{days_done:.2f}", f">={args.days:g}", days_done >= args.days - 1e-9)
    result("soak_false_incidents", str(len(all_incidents)), "0", not all_incidents)
    result("soak_peak_rss_mb", f"{peak:.0f}", "<=1024", peak <= 1024)
    result("soak_rss_growth_steady_pct", f"{100 * rss_growth:.1f}", "<=10", rss_growth <= 0.10)
    result("soak_state_growth_steady_pct", f"{100 * state_growth:.1f}", "<=5", state_growth <= 0.05)
    result("soak_state_kb", f"{per_day[-1]['state_kb']:.0f}", "<=1024", per_day[-1]["state_kb"] <= 1024)
    if store is not None:
        result("soak_db_mb_per_day", f"{db_per_day:.1f}", "<=100", db_per_day <= 100)
    result(
        "soak_tick_ms_p99",
        f"{p99_ms:.1f}",
        f"<{cadence.total_seconds() * 1000 / 10:.0f}",
        p99_ms < cadence.total_seconds() * 100,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
