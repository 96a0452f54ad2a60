"""World benchmark: a watch for every country (249, ISO 3166-1) at election-day cadence (1 minute) on one machine,
and on a Prefect server with 1 and 2 workers.

The watches (tests/fakes/world_watches.py: regions from pycountry's subdivisions, a generated provider list sized
like the country) are served by the fake IODA, OONI and RIPEstat on 127.0.0.1 with 50 ms latency (IODA noisy,
publishing a 5-minute bin up to a minute after it has ended) and alert the fake Slack, all in a process of their
own so that their CPU is not counted. A Prefect server on PostgreSQL (127.0.0.1:5432) and pollwatch's store on
PostgreSQL are started as tests/fakes/prefect_server.py starts them. Ways, each measured after one warm-up slot:

- before: the watches ticked one by one with the single-watch flow (`watch-tick`), one after another in one
  process (`--before-watches` of them, `--before-slots` slots): requests and CPU per watch-tick, ticks on time.
- batch: one `watches-tick` run per slot in this process (a long-lived process, as `pollwatch serve` runs).
- workers=N: `watches-tick` deployed as two lanes on a process work pool with N workers (a fresh Python per run).

Reported per way: ticks due / completed on time (started within 15 s of the tick, finished before the next), CPU
per watch-tick (the processes this bench started, not the fakes, PostgreSQL or the other users of the machine),
requests per watch-tick to each observatory, and the time from a value appearing at the fake IODA (the end of
the first 5-minute bin of an outage injected into a few countries) to its alert reaching the fake Slack, p50
and p95. Then RESULT lines. Goals: >= 99 % of ticks on time, alert latency p95 < 90 s, >= 3x fewer requests
per watch-tick than one by one.

    python bench/world.py                                   # 249 watches, 5 minutes each way, before/batch/1/2
    python bench/world.py --watches 30 --minutes 2 --ways batch      # while developing
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RUN_ALL_TIMEOUT = 2400  # the worker runs take about half an hour on 2 cores (bench/run_all.py reads this)
ON_TIME_START = 15.0  # seconds after its tick a watch's tick must have started
GOAL_ON_TIME, GOAL_LATENCY, GOAL_FEWER = 0.99, 90.0, 3.0
OBSERVATORIES = ("ioda", "ooni", "ripestat")
CLK = os.sysconf("SC_CLK_TCK")


# --- the fakes, in a process of their own ------------------------------------------------------------------


def _fakes_main(conn, latency: float, countries: list[str]) -> None:  # type: ignore[no-untyped-def]
    from tests.fakes.observatories import observatories
    from tests.fakes.slack_api import FakeSlack
    from tests.fakes.world_watches import countries as all_countries

    channels = {f"pollwatch-{cc.lower()}": f"C{i:08d}A" for i, cc in enumerate(countries)}
    channels.update({f"pollwatch-ops-{cc.lower()}": f"C{i:08d}O" for i, cc in enumerate(countries)})
    slack = FakeSlack(channels=channels, list_page=1000).start()
    with observatories(latency=latency) as obs:
        # IODA's values vary; a bin appears once it has ended, up to a minute later (processing): at any point
        # of the ticks' minute, so the latency measured is not the luck of a tick at the bin's end
        obs.ioda.noise, obs.ioda.published_only, obs.ioda.publish_delay = 0.04, True, 60.0
        # IODA knows the countries' regions (numeric codes, looked up by name)
        for k, (cc, _, subs) in enumerate(all_countries()):
            obs.ioda.regions[cc] = [{"code": str(10000 + 300 * k + i), "name": n} for i, (_, n) in enumerate(subs)]
        conn.send({"urls": obs.base_urls(), "slack": slack.base_url, "token": slack.token})
        while True:
            cmd, *args = conn.recv()
            if cmd == "stop":
                break
            if cmd == "drop":
                cc, start = args
                obs.ioda.drop(cc, start, start + timedelta(days=1), 0.05)
                conn.send(True)
            elif cmd == "published_at":
                conn.send(obs.ioda.published_at(int(args[1].timestamp()), "bgp", args[0]))
            elif cmd == "requests":
                conn.send({name: len(getattr(obs, name).requests) for name in OBSERVATORIES})
            elif cmd == "posts":  # the fake Slack times calls on the monotonic clock: as wall-clock times here
                offset = time.time() - time.monotonic()
                conn.send(
                    [
                        (c.at + offset, c.params.get("channel"), json.dumps(c.params)[:2000])
                        for c in list(slack.calls)
                        if c.method == "chat.postMessage" and c.fault is None
                    ]
                )
    slack.stop()


class Fakes:
    def __init__(self, latency: float, countries: list[str]) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_fakes_main, args=(child, latency, countries), daemon=True)
        self.proc.start()
        info = self.conn.recv()
        self.urls, self.slack, self.token = info["urls"], info["slack"], info["token"]

    def call(self, *cmd):  # type: ignore[no-untyped-def]
        self.conn.send(cmd)
        return self.conn.recv()

    def stop(self) -> None:
        self.conn.send(("stop",))
        self.proc.join(timeout=10)


# --- measuring -------------------------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of processes and their waited-for children (/proc/PID/stat)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / CLK
    return total


def tick_records(store_url: str, names: list[str], since: datetime, until: datetime) -> list[dict]:
    """Each (watch, tick) in [since, until) with when its run record started and when its tick completed."""
    from pollwatch import audit, store

    out = []
    with store.session_scope(store_url) as s:
        for name in names:
            started = {}
            for r in audit.runs(s, watch=name):
                tick = r["parameters"].get("tick")
                if tick and r["started"]:
                    started.setdefault(datetime.fromisoformat(tick.replace("Z", "+00:00")), r["started"])
            for row in store.list_ticks(s, name):
                if since <= row.tick < until and (row.summary or {}).get("status") != store.TICK_RUNNING:
                    out.append(
                        {
                            "watch": name,
                            "tick": row.tick,
                            "started": started.get(row.tick),
                            "done": row.completed_at,
                            "covered": "covered_by" in (row.summary or {}),
                        }
                    )
    return out


def on_time(rec: dict, cadence: float) -> bool:
    if rec["covered"] or rec["started"] is None:
        return False
    return (rec["started"] - rec["tick"]).total_seconds() <= ON_TIME_START and (
        rec["done"] - rec["tick"]
    ).total_seconds() < cadence


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def wait_until(t: datetime) -> None:
    while (left := (t - datetime.now(timezone.utc)).total_seconds()) > 0:
        time.sleep(min(left, 1.0))


def report(way: str, due: int, recs: list[dict], cadence: float, cpu: float, requests: dict, latencies: list[float]):  # type: ignore[no-untyped-def]
    good = sum(on_time(r, cadence) for r in recs)
    done = len(recs)
    per = {k: v / max(1, done) for k, v in requests.items()}
    print(
        f"[{way}] ticks due {due}, completed {done}, on time {good} ({good / max(1, due):.1%}); "
        f"CPU per watch-tick {cpu / max(1, done) * 1000:.0f} ms; requests per watch-tick "
        + ", ".join(f"{k} {v:.2f}" for k, v in per.items())
        + f" (total {sum(per.values()):.2f}); alert latency p50 {pct(latencies, 0.5):.0f} s, "
        f"p95 {pct(latencies, 0.95):.0f} s over {len(latencies)} alert(s)",
        flush=True,
    )
    return {"on_time": good / max(1, due), "requests": sum(per.values()), "p95": pct(latencies, 0.95), "cpu": cpu}


def alert_latencies(fakes: Fakes, drops: dict[str, datetime]) -> list[float]:
    """Seconds from the first outage bin's appearance at the fake IODA to the first post in the country's channel."""
    first: dict[str, float] = {}
    for at, channel, _ in fakes.call("posts"):
        for cc in drops:
            if channel and channel.endswith(f"{_index(cc)}A"):
                first.setdefault(cc, at)
    return [first[cc] - fakes.call("published_at", cc, drops[cc]) for cc in drops if cc in first]


_INDEX: dict[str, int] = {}


def _index(cc: str) -> str:
    return f"{_INDEX[cc]:08d}"


_DROPPED: set[str] = set()


def schedule_drops(fakes: Fakes, countries: list[str], start: datetime, count: int) -> dict[str, datetime]:
    """Outages in `count` countries not dropped before, from the 5-minute bin under way at `start` (IODA publishes
    it when it ends: the values appear then)."""
    t = start - timedelta(seconds=start.timestamp() % 300)
    drops: dict[str, datetime] = {}
    for cc in countries[len(countries) // 3 :] + countries[: len(countries) // 3]:
        if len(drops) >= count:
            break
        if cc not in _DROPPED:
            _DROPPED.add(cc)
            fakes.call("drop", cc, t)
            drops[cc] = t
    return drops


def measured_slots(first: datetime, cadence: float, minutes: float, drops: dict[str, datetime]) -> list[datetime]:
    """The slots measured: `minutes` of them, and more until 90 s after the injected outages appear."""
    slots = [first + timedelta(seconds=cadence * i) for i in range(max(1, int(minutes * 60 // cadence)))]
    appear = max(drops.values(), default=first - timedelta(minutes=5)) + timedelta(minutes=6, seconds=GOAL_LATENCY)
    while slots[-1] + timedelta(seconds=cadence) < appear:
        slots.append(slots[-1] + timedelta(seconds=cadence))
    return slots


# --- the ways --------------------------------------------------------------------------------------------


def run_before(args, fakes, cluster, paths, names, cadence) -> dict:  # type: ignore[no-untyped-def]
    from pollwatch.flows.watch_tick import watch_tick

    sample = paths[: args.before_watches]
    slot = _next_slot(cadence)
    slots = [slot + timedelta(seconds=cadence * i) for i in range(args.before_slots + 1)]
    cpu0 = req0 = None
    walls = []
    for i, t in enumerate(slots):
        wait_until(t)
        if i == 1:
            cpu0, req0 = cpu_seconds([os.getpid()]), fakes.call("requests")
        for p in sample:
            began = time.perf_counter()
            watch_tick(str(p), t, base_urls=fakes.urls)
            walls.append(time.perf_counter() - began)
    cpu = cpu_seconds([os.getpid()]) - cpu0
    wall = statistics.median(walls[len(sample) :])
    print(
        f"  one by one: {wall:.2f} s per watch-tick (median): one process keeps up with {int(cadence // wall)} "
        f"watches at this cadence"
    )
    req = {k: v - req0[k] for k, v in fakes.call("requests").items()}
    recs = _single_records(
        cluster.store_url, [n for n in names[: len(sample)]], slots[1], slots[-1] + timedelta(seconds=cadence)
    )
    return report("before: one by one", len(sample) * args.before_slots, recs, cadence, cpu, req, [])


def _single_records(store_url, names, since, until):  # type: ignore[no-untyped-def]
    """A single tick's record starts with its flow run (run.start of watch-tick, parameters carry the tick)."""
    from pollwatch import audit, store

    out = []
    with store.session_scope(store_url) as s:
        for name in names:
            starts = {r["flow_run_id"]: r["started"] for r in audit.runs(s, watch=name)}
            for row in store.list_ticks(s, name):
                if since <= row.tick < until:
                    out.append(
                        {
                            "watch": name,
                            "tick": row.tick,
                            "started": starts.get(row.flow_run_id),
                            "done": row.completed_at,
                            "covered": False,
                        }
                    )
    return out


def _next_slot(cadence: float) -> datetime:
    now = datetime.now(timezone.utc)
    return datetime.fromtimestamp((now.timestamp() // cadence + 1) * cadence, tz=timezone.utc)


def run_batch(args, fakes, cluster, directory, names, countries, cadence) -> dict:  # type: ignore[no-untyped-def]
    from pollwatch.flows.watches_tick import watches_tick

    warm = _next_slot(cadence)
    wait_until(warm)
    watches_tick(str(directory), warm, every=int(cadence), base_urls=fakes.urls)  # cold: the windows' history
    first = _next_slot(cadence)  # after the cold tick, however long it took
    drops = schedule_drops(fakes, countries, first, args.drops)
    slots = measured_slots(first, cadence, args.minutes, drops)
    end = slots[-1] + timedelta(seconds=cadence)
    cpu0, req0 = cpu_seconds([os.getpid()]), fakes.call("requests")
    for t in slots:
        wait_until(t)
        watches_tick(str(directory), t, every=int(cadence), base_urls=fakes.urls)
    wait_until(end)
    cpu = cpu_seconds([os.getpid()]) - cpu0
    req = {k: v - req0[k] for k, v in fakes.call("requests").items()}
    recs = tick_records(cluster.store_url, names, slots[0], end)
    return report("batch: one process", len(names) * len(slots), recs, cadence, cpu, req, alert_latencies(fakes, drops))


def run_workers(args, fakes, cluster, directory, names, countries, cadence, workers: int) -> dict:  # type: ignore[no-untyped-def]
    import httpx

    from pollwatch.flows.scheduling import apply_watches_schedule

    pool = f"pollwatch-world-{workers}"
    os.environ["PREFECT_API_URL"] = cluster.api
    httpx.post(f"{cluster.api}/work_pools/", json={"name": pool, "type": "process"}, timeout=10)
    cluster.env["PREFECT_WORKER_PREFETCH_SECONDS"] = "30"  # a run's fresh Python starts before its slot
    procs = [
        cluster.start(
            f"worker-{workers}-{i}",
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"],
        )
        for i in range(workers)
    ]
    server_pid = cluster.procs[0].pid
    deps = apply_watches_schedule(
        str(directory), pool, lanes=args.lanes, every=int(cadence), name=f"world-{workers}", base_urls=fakes.urls
    )
    warm = _next_slot(cadence) + timedelta(seconds=cadence)  # the first slot after deploying: cold, not counted
    while not tick_records(cluster.store_url, names[:1], warm - timedelta(seconds=cadence), warm + timedelta(days=1)):
        time.sleep(2)
    first = _next_slot(cadence)
    drops = schedule_drops(fakes, countries, first, args.drops)
    slots = measured_slots(first, cadence, args.minutes, drops)
    wait_until(slots[0] - timedelta(seconds=2))
    end = slots[-1] + timedelta(seconds=cadence)
    pids = [p.pid for p in procs]
    cpu0, srv0, req0 = cpu_seconds(pids), cpu_seconds([server_pid]), fakes.call("requests")
    wait_until(end)
    req = {k: v - req0[k] for k, v in fakes.call("requests").items()}
    cpu, srv = cpu_seconds(pids) - cpu0, cpu_seconds([server_pid]) - srv0
    with httpx.Client(timeout=10) as client:  # stop scheduling: pause the lanes' deployments
        for dep in client.post(
            f"{cluster.api}/deployments/filter", json={"deployments": {"tags": {"all_": [f"watches:world-{workers}"]}}}
        ).json():
            client.post(f"{cluster.api}/deployments/{dep['id']}/pause_deployment")
    recs = tick_records(cluster.store_url, names, slots[0], end)
    from tests.fakes.prefect_server import stop

    for p in procs:
        stop(p)
    print(
        f"  ({len(deps.deployments)} lane deployments; Prefect server CPU {srv / max(1, len(recs)) * 1000:.0f} ms "
        "per watch-tick more)"
    )
    return report(f"workers={workers}", len(names) * len(slots), recs, cadence, cpu, req, alert_latencies(fakes, drops))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--watches", type=int, default=249)
    ap.add_argument("--minutes", type=float, default=5.0, help="measured minutes per way (after a warm-up slot)")
    ap.add_argument("--cadence", type=float, default=60.0, help="seconds")
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--ways", default="before,batch,1,2", help="comma separated: before, batch, and worker counts")
    ap.add_argument("--before-watches", type=int, default=30)
    ap.add_argument("--before-slots", type=int, default=2)
    ap.add_argument("--lanes", type=int, default=2)
    ap.add_argument("--drops", type=int, default=10, help="countries with an outage injected, per way")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pollwatch-bench-world-"))
    os.environ.update(
        {
            "PREFECT_HOME": str(work / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "POLLWATCH_HOME": str(work / "home"),
        }
    )
    from tests.fakes.prefect_server import prefect_cluster
    from tests.fakes.world_watches import countries as all_countries
    from tests.fakes.world_watches import write_world_watches

    cadence = args.cadence
    directory = work / "watches"
    paths = write_world_watches(
        directory,
        args.watches,
        cadence=timedelta(seconds=cadence),
        start=datetime.now(timezone.utc) - timedelta(hours=1),
        length=timedelta(hours=6),
    )
    countries = [cc for cc, _, _ in all_countries(args.watches)]
    _INDEX.update({cc: i for i, cc in enumerate(countries)})
    names = [f"world-{cc.lower()}" for cc in countries]
    print(
        f"{len(paths)} watches, {args.minutes:g} min per way at a {cadence:g} s cadence; "
        f"load average {os.getloadavg()}",
        flush=True,
    )
    fakes = Fakes(args.latency, countries)
    results = {}
    try:
        with prefect_cluster(work) as cluster:
            os.environ.update({k: v for k, v in cluster.env.items() if k.startswith(("PREFECT_", "POLLWATCH_"))})
            os.environ.update(
                {
                    "POLLWATCH_SLACK_BOT_TOKEN": fakes.token,
                    "POLLWATCH_SLACK_BASE_URL": fakes.slack,
                    "PREFECT_API_URL": cluster.api,
                    "PREFECT_LOGGING_LEVEL": "WARNING",
                }
            )
            cluster.env.update(
                {
                    "POLLWATCH_SLACK_BOT_TOKEN": fakes.token,
                    "POLLWATCH_SLACK_BASE_URL": fakes.slack,
                    "PYTHONPATH": str(REPO),
                    "PREFECT_LOGGING_LEVEL": "WARNING",
                }
            )
            for way in args.ways.split(","):
                if way == "before":
                    results[way] = run_before(args, fakes, cluster, paths, names, cadence)
                elif way == "batch":
                    results[way] = run_batch(args, fakes, cluster, directory, names, countries, cadence)
                else:
                    results[way] = run_workers(args, fakes, cluster, directory, names, countries, cadence, int(way))
                print(f"  load average {os.getloadavg()}", flush=True)
    finally:
        fakes.stop()
    before = results.get("before", {}).get("requests")
    for way, r in results.items():
        if way == "before":
            continue
        tag = "world" if way == "batch" else f"world_workers{way}"
        rows = [
            ("ticks_on_time", f"{r['on_time']:.3f}", f">={GOAL_ON_TIME}", r["on_time"] >= GOAL_ON_TIME),
            ("alert_latency_p95_s", f"{r['p95']:.0f}", f"<{GOAL_LATENCY:.0f}", r["p95"] < GOAL_LATENCY),
        ]
        if before:
            fewer = before / r["requests"] if r["requests"] else float("inf")
            rows.append(("fewer_requests", f"{fewer:.1f}", f">={GOAL_FEWER:.0f}", fewer >= GOAL_FEWER))
        for name, figure, goal, met in rows:
            print(f"RESULT name={tag}_{name} figure={figure} goal={goal} met={'yes' if met else 'no'}")


if __name__ == "__main__":
    main()
