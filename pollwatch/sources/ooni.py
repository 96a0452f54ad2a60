"""OONI: hourly service-test failure rates per network from the aggregation API.

`GET /api/v1/aggregation?probe_cc=&probe_asn=AS1,AS2&test_name=&domain=&since=&until=
&time_grain=hour&axis_x=measurement_start_day&axis_y=probe_asn` returns rows of
`anomaly_count, confirmed_count, failure_count, ok_count, measurement_count` per hour and ASN.
One request covers one test (and, for `web_connectivity`, one domain) for many ASNs
(`options.asns_per_request`, default 250); a service with several domains sums their counts.
`since`/`until` are dates and the API allows hourly grain for at most 7 days, so longer ranges
are split into weeks.

Only complete hours are emitted (an hour whose end is after the range's end is left for a later
tick; `options.partial_hours: true` emits it anyway). Each (service, ASN, hour) becomes a
`service_failure_rate` observation: the share of completed tests that saw interference,
(anomaly + confirmed) / (measurements - failures), with `count` = completed tests (a rate from 2
tests is not a rate from 200). OONI's `failure_count` counts measurements whose run failed
(`msm_failure`: the probe could not complete the test; ooni/backend
oonimeasurements/routers/v1/aggregation.py), and `anomaly_count`/`confirmed_count` exclude them:
a failed run is no evidence of blocking. An hour where more than half the runs failed
(`options.max_failed_share`) is a gap and a data-quality notice, never a rate; an hour without
measurements is `value=None, count=0` (no data; never a 0.0 rate).

The country's tests of each service, all the watch's networks together, are a series too
(`asn` None: the sums of the networks' measurements and failures per hour; `options.country_series:
false` turns it off): a block that hits every network a little is plain in the pooled counts long
before any one network's few tests an hour show it (docs/detection.md).

Several watches (`collect_many`) share requests: `probe_cc` lists their countries and OONI sums a network's rows
over them, so a country whose watches share a network with another's is asked alone, and a network measured in a
listed country none of its watches is for (asked once a day: pollwatch/sources/ooni_homes.py) with its own alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from functools import lru_cache
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from pollwatch.models import NoticeLevel, Observation, Provenance, entity_key, iso
from pollwatch.playbook import Service, Watch
from pollwatch.sources.base import (
    ShapeError,
    Source,
    _Run,
    count_shared_request,
    now_utc,
    read_cache_json,
    shape_failure,
    write_atomic,
)
from pollwatch.sources.http import FetchError, HttpClient
from pollwatch.sources.ooni_homes import HomesCache, discover, plan_requests
from pollwatch.timeutil import floor_time, parse_duration, parse_time

FAILURE_RATE = "service_failure_rate"
MAX_FAILED_SHARE = 0.5  # an hour where more than this share of runs failed is a data-quality gap, not a rate
HOUR = timedelta(hours=1)
MAX_HOURLY_RANGE = timedelta(days=7)
CACHE_DAYS = 16  # final hours kept on disk per key (a watch's longest window, 7 days, and then some)
MAX_HOUR_FILE_BYTES = 64 * 2**20  # a kept file larger than this is not read (a refetch)


class _Span(NamedTuple):
    """The hours of one date window a request serves: the window's first midnight, the hours to emit [lo, hi),
    the end of the final hours (`_ready_until`) and the list of hours to emit."""

    day_lo: datetime
    lo: datetime
    hi: datetime
    ready: datetime
    needed: list[datetime]


class OoniRow(BaseModel):
    model_config = ConfigDict(extra="ignore")

    anomaly_count: int
    confirmed_count: int
    failure_count: int
    ok_count: int = 0
    measurement_count: int
    measurement_start_day: str
    probe_asn: int | str


_ROWS = TypeAdapter(list[OoniRow])


def parse_aggregation(payload: Any, hours: tuple[datetime, datetime] | None = None) -> list[OoniRow]:
    """The rows of an /api/v1/aggregation response with axis_x=measurement_start_day, axis_y=probe_asn.

    With `hours=(lo, hi)`, rows of other hours are dropped before validation (OONI answers whole
    days; a tick needs an hour or two of them).
    """
    if not isinstance(payload, dict):
        raise ShapeError(f"expected a JSON object with 'result', got {type(payload).__name__}")
    if payload.get("error"):
        raise ShapeError(f"OONI reported an error: {str(payload['error'])[:200]}")
    if "result" not in payload:
        raise ShapeError(f"expected a 'result' field, got {sorted(payload)[:6]}")
    result = payload["result"]
    if isinstance(result, dict):
        result = [result]
    if not isinstance(result, list):
        raise ShapeError(f"'result' should be a list of rows, got {type(result).__name__}")
    if hours is not None:
        lo, hi = hours
        kept = []
        for item in result:
            if not isinstance(item, dict):
                raise ShapeError(f"a row should be an object, got {type(item).__name__}")
            day = item.get("measurement_start_day")
            try:
                if isinstance(day, str) and not lo <= _hour_of(day) < hi:
                    continue
            except ValueError:
                pass  # validation below reports it
            kept.append(item)
        result = kept
    try:
        return _ROWS.validate_python(result)  # one call for all rows: thousands per response
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ShapeError(f"row {'.'.join(str(x) for x in err['loc'])}: {err['msg']}") from None


@lru_cache(maxsize=4096)
def _hour_of(text: str) -> datetime:
    return floor_time(parse_time(text), HOUR)  # a day grain (a bare date) is its midnight


def _asn_of(v: int | str) -> int:
    s = str(v).upper().removeprefix("AS")
    return int(s)


class OoniSource(Source):
    """OONI aggregation API client (see the module docstring)."""

    name = "ooni"
    default_base_url = "https://api.ooni.io"
    _cache: "HourCache | None" = None

    def services(self, watch: Watch) -> list[Service]:
        return list(watch.services) + list(watch.circumvention)

    def asns(self, watch: Watch) -> list[int]:
        extra = [int(a) for a in self.options.get("asns", [])]
        return list(dict.fromkeys([p.asn for p in watch.providers] + extra))

    def expected(self, watch: Watch) -> list[tuple[str, str | None]]:
        cc = watch.country or ""
        out = [(entity_key(cc, None, a, s.name), FAILURE_RATE) for s in self.services(watch) for a in self.asns(watch)]
        if self._pooled():
            out += [(entity_key(cc, None, None, s.name), FAILURE_RATE) for s in self.services(watch)]
        return out

    def _pooled(self) -> bool:
        return bool(self.options.get("country_series", True))

    async def _collect(self, run: _Run) -> None:
        self._cache = None if self.options.get("cache", True) is False else HourCache(self.cache_dir(), self.base_url)
        async with self.client() as http:
            await self._collect_runs(http, [run])
            run.account(http)

    async def _collect_many(self, runs: list[_Run]) -> None:
        """Several watches' counts in shared requests: per test (and domains) and range, `probe_cc` lists the
        watches' countries and `probe_asn` their networks (both comma separated, ooni/backend aggregation.py);
        rows come back per network and hour, summed over the listed countries, and each watch keeps its own
        networks' (a country sharing a network with another is asked alone: `_requests`)."""
        self._cache = None if self.options.get("cache", True) is False else HourCache(self.cache_dir(), self.base_url)
        groups: dict[tuple[datetime, datetime, timedelta], list[_Run]] = {}
        for run in runs:
            groups.setdefault((run.start, run.end, self.settle(run.watch)), []).append(run)
        async with self.client() as http:
            await asyncio.gather(*(self._collect_runs(http, group) for group in groups.values()))

    async def _collect_runs(self, http: HttpClient, runs: list[_Run]) -> None:
        """Runs with the same range and settling time, one request per (test, domains, countries, networks, week)."""
        tests: dict[tuple[str, tuple[str | None, ...]], list[tuple[_Run, Service]]] = {}
        for run in runs:
            run.expected = self.expected(run.watch)
            if not self.asns(run.watch) or not self.services(run.watch):
                run.info.append("no providers or no services in the watch: nothing to ask OONI for")
                continue
            for svc in self.services(run.watch):
                domains = (svc.domains or [None]) if svc.test == "web_connectivity" else [None]
                tests.setdefault((svc.test, tuple(domains)), []).append((run, svc))
        windows = _date_windows(runs[0].start, runs[0].end)
        cache = None if self._cache is None else HomesCache(self._cache.base, self.base_url)
        measured = await discover(http, cache, list(tests.values()), self.asns, self._per_request())
        jobs = [
            (served, countries, group, w, list(domains))
            for (_, domains), members in tests.items()
            for served, countries, group in self._requests(members, measured)
            for w in windows
        ]
        await asyncio.gather(*(self._one(http, *job) for job in jobs))
        if self._pooled():
            for run in runs:
                run.result.observations.extend(country_series(run.result.observations, set(self.asns(run.watch))))

    def _per_request(self) -> int:
        return max(1, int(self.options.get("asns_per_request", 250)))

    def _requests(
        self, members: list[tuple[_Run, Service]], measured: dict[int, set[str]] | None
    ) -> list[tuple[list[tuple[_Run, Service]], str, tuple[int, ...]]]:
        """(watches served, probe_cc, networks) of each request for one test: `ooni_homes.plan_requests`."""
        return plan_requests(members, self.asns, measured, self._per_request())

    def settle(self, watch: Watch) -> timedelta:
        """How long after its end an hour's counts are final: the playbook's lag on the signal less the hour
        (template: 1h20m -> 20 min, late uploads included); `options.settle` overrides."""
        if self.options.get("settle") is not None:
            return parse_duration(str(self.options["settle"]))
        cfg = watch.signals.get(FAILURE_RATE)
        lag = cfg.lag if cfg is not None and cfg.source == self.name else timedelta(0)
        return max(timedelta(0), lag - HOUR)

    def _ready_until(self, run: _Run) -> datetime:
        """Hours starting before this are complete in the range (they end by its end) and final by the clock (they
        ended `settle` ago): they are emitted, fetched once and cached. A live tick leaves a settling hour for the
        tick that finds it final; a range in the past has every complete hour final."""
        return min(floor_time(run.end, HOUR), floor_time(now_utc() - self.settle(run.watch), HOUR))

    async def _one(
        self,
        http: HttpClient,
        members: list[tuple[_Run, Service]],
        countries: str,
        asns: tuple[int, ...],
        window: tuple[date, date],
        domains: list[str | None],
    ) -> None:
        """One request's counts (a service of several domains: one request per domain, summed) for its watches."""
        span = self._span(members[0][0], window)
        if span is None:
            return  # no hour of this window is ready yet: nothing is asked
        counts: dict[tuple[int, datetime], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        provs: list[Provenance] = []
        for domain in domains:
            hours = await self._domain_hours(http, members, countries, asns, window, domain, span)
            if hours is None:
                return
            for h, per_asn in hours.items():
                for a_text, c in per_asn["asns"].items():
                    acc = counts[(int(a_text), h)]
                    acc[0] += c[0]
                    acc[1] += c[1]
                    acc[2] += c[2]
                    acc[3] += 1
                provs.append(Provenance.model_validate(per_asn["provenance"]))
        prov = _combined_provenance(provs)
        for r, s in members:
            self._emit(r, s, self._own(r, asns), counts, prov, span.needed)

    def _span(self, run: _Run, window: tuple[date, date]) -> "_Span | None":
        """The hours of a date window to emit for runs like `run` (None: none is ready yet)."""
        since, until = window
        day_lo = datetime(since.year, since.month, since.day, tzinfo=timezone.utc)
        day_hi = datetime(until.year, until.month, until.day, tzinfo=timezone.utc)
        ready = self._ready_until(run)
        lo = max(floor_time(run.start, HOUR), day_lo)
        hi = min(run.end if self.options.get("partial_hours", False) else ready, day_hi)
        if hi <= lo:
            return None
        needed = [lo + i * HOUR for i in range(-(-(hi - lo) // HOUR))]  # a partial last hour too
        return _Span(day_lo, lo, hi, ready, needed)

    async def _domain_hours(
        self,
        http: HttpClient,
        members: list[tuple[_Run, Service]],
        countries: str,
        asns: tuple[int, ...],
        window: tuple[date, date],
        domain: str | None,
        span: "_Span",
    ) -> dict[datetime, dict[str, Any]] | None:
        """A request's hours for one domain (or none): from the cache when it holds them all, else asked (and the
        final ones cached). None when the request failed: gaps and a notice for each watch it served."""
        run, svc = members[0]
        test = svc.test
        key = (countries, test, domain or "", ",".join(map(str, asns)))
        cached = self._cache.get(key) if self._cache else None
        if cached is not None and all(iso(h) in cached for h in span.needed):
            return {h: cached[iso(h)] for h in span.needed}
        params = {
            "probe_cc": countries,
            "probe_asn": ",".join(f"AS{a}" for a in asns),
            "test_name": test,
            "domain": domain,
            "since": window[0].isoformat(),
            "until": window[1].isoformat(),
            "time_grain": "hour",
            "axis_x": "measurement_start_day",
            "axis_y": "probe_asn",
        }
        count_shared_request([r for r, _ in members])
        # the answer covers the whole window: every final hour of it is kept for later ticks
        keep_lo = max(span.day_lo, floor_time(run.start, HOUR)) if self._cache is None else span.day_lo
        try:
            fetched = await http.get_json("/api/v1/aggregation", params)
            rows = parse_aggregation(fetched.payload, (keep_lo, span.hi))
        except (FetchError, ShapeError) as exc:
            if isinstance(exc, ShapeError):
                exc = shape_failure(exc)
            for r, s in members:
                reason = r.failed(exc, f"{s.name} ({test}{' ' + domain if domain else ''})")
                for a in self._own(r, asns):
                    r.gap(entity_key(r.country, None, a, s.name), FAILURE_RATE, reason, span.lo, span.hi)
                if self._pooled():  # the country's pooled series misses these networks' tests too
                    r.gap(entity_key(r.country, None, None, s.name), FAILURE_RATE, reason, span.lo, span.hi)
            return None
        fresh = self._hours(run, svc, rows, set(asns), fetched.provenance(), keep_lo, span.hi)
        if self._cache is not None:
            self._cache.put(key, {iso(h): v for h, v in fresh.items() if h < span.ready}, span.hi)
        return {h: fresh[h] for h in span.needed}

    def _own(self, run: _Run, asns: tuple[int, ...]) -> tuple[int, ...]:
        """The networks of a request that are this run's watch's (all of them for a single watch)."""
        mine = set(self.asns(run.watch))
        return tuple(a for a in asns if a in mine)

    @staticmethod
    def _hours(
        run: _Run, svc: Service, rows: list[OoniRow], wanted: set[int], prov: Provenance, lo: datetime, hi: datetime
    ) -> dict[datetime, dict[str, Any]]:
        """Per hour of [lo, hi): {asns: {asn: [anomalies, failures, measurements]},
        provenance} (an hour without rows: none).
        """
        out: dict[datetime, dict[str, Any]] = {}
        t = lo
        while t < hi:
            out[t] = {"asns": {}, "provenance": prov.model_dump(mode="json")}
            t += HOUR
        for r in rows:
            try:
                asn, hour = _asn_of(r.probe_asn), _hour_of(r.measurement_start_day)
            except ValueError as exc:
                run.failed(shape_failure(ShapeError(f"unreadable row key: {exc}")), svc.name)
                continue
            if asn not in wanted or hour not in out:
                continue
            c = out[hour]["asns"].setdefault(str(asn), [0, 0, 0])
            c[0] += r.anomaly_count + r.confirmed_count
            c[1] += r.failure_count
            c[2] += r.measurement_count
        return out

    def _emit(
        self,
        run: _Run,
        svc: Service,
        asns: tuple[int, ...],
        counts: dict[tuple[int, datetime], list[int]],
        prov: Provenance | None,
        hours: list[datetime],
    ) -> None:
        cc = run.country
        most = float(self.options.get("max_failed_share", MAX_FAILED_SHARE))
        failed_hours: list[str] = []
        for hour in hours:
            for a in asns:
                anomalies, failures, total, _ = counts.get((a, hour), (0, 0, 0, 0))
                key = entity_key(cc, None, a, svc.name)
                done = total - failures
                if total > 0 and failures > most * total:
                    # most runs could not complete the test (a probe bug, an OONI outage): no evidence either way
                    run.gap(
                        key,
                        FAILURE_RATE,
                        f"{svc.name}: {failures} of {total} OONI measurements failed to run "
                        f"(msm_failure) in AS{a} at {hour:%Y-%m-%dT%H:%MZ}",
                        hour,
                        hour + HOUR,
                    )
                    failed_hours.append(f"AS{a} {hour:%H:%MZ} ({failures}/{total})")
                    done = 0
                run.result.observations.append(
                    Observation(
                        time=hour,
                        source="ooni",
                        signal=FAILURE_RATE,
                        country=cc,
                        asn=a,
                        service=svc.name,
                        provenance=prov,
                        value=(anomalies / done) if done > 0 else None,
                        count=max(done, 0),
                    )
                )
        if failed_hours:
            shown = ", ".join(failed_hours[:6]) + (
                f" and {len(failed_hours) - 6} more" if len(failed_hours) > 6 else ""
            )
            run.notice(
                f"ooni: data quality: most {svc.name} measurements failed to run (OONI's failure_count; not a block) "
                f"for {shown}; those hours are gaps",
                NoticeLevel.warning,
            )


def country_series(observations: list[Observation], asns: set[int]) -> list[Observation]:
    """Per (service, hour): the failure rate of the listed networks' tests together, weighted by
    their measurement counts (an hour with no measurements anywhere is no data)."""
    sums: dict[tuple[datetime, str, str], list[Any]] = {}
    for o in observations:
        if o.signal != FAILURE_RATE or o.asn not in asns or o.service is None:
            continue
        acc = sums.setdefault((o.time, o.country, o.service), [0.0, 0, o.provenance])
        if o.value is not None and o.count:
            acc[0] += o.value * o.count
            acc[1] += o.count
    out = []
    for (time, cc, svc), (failed, total, prov) in sorted(sums.items(), key=lambda kv: (kv[0][0], kv[0][2])):
        out.append(
            Observation(
                time=time,
                source="ooni",
                signal=FAILURE_RATE,
                country=cc,
                service=svc,
                provenance=prov,
                value=round(failed / total, 6) if total else None,
                count=total,
            )
        )
    return out


def _combined_provenance(provs: list[Provenance]) -> Provenance | None:
    """One provenance for counts summed from several answers (a service's domains; cached and fresh hours)."""
    unique = list({(p.request, p.payload_hash): p for p in provs}.values())
    if not unique:
        return None
    if len(unique) == 1:
        return unique[0]
    digest = hashlib.sha256("".join(p.payload_hash or "" for p in unique).encode()).hexdigest()
    return Provenance(
        request=" | ".join(p.request for p in unique),
        fetched_at=max(p.fetched_at for p in unique if p.fetched_at),
        payload_hash=digest,
    )


class HourCache:
    """Final hours of OONI's answers on disk, per (country, test, domain, networks): a later tick (another
    process under `serve`) reads them instead of asking OONI again. One JSON file per key under
    `$POLLWATCH_HOME/cache/ooni/` (`options.cache_dir`); `options.cache: false` turns it off. Hours older
    than `CACHE_DAYS` before the newest are dropped when a file is written."""

    def __init__(self, base: Path, base_url: str) -> None:
        self.base = base
        self.base_url = base_url

    def _path(self, key: tuple[str, ...]) -> Path:
        digest = hashlib.sha256(json.dumps([self.base_url, *key]).encode()).hexdigest()[:32]
        return self.base / f"{digest}.json"

    def get(self, key: tuple[str, ...]) -> dict[str, Any] | None:
        data = read_cache_json(self._path(key), MAX_HOUR_FILE_BYTES)
        return data.get("hours") if isinstance(data, dict) and isinstance(data.get("hours"), dict) else None

    def put(self, key: tuple[str, ...], hours: dict[str, Any], newest: datetime) -> None:
        merged = {**(self.get(key) or {}), **hours}
        oldest = iso(newest - timedelta(days=CACHE_DAYS))
        merged = {h: v for h, v in merged.items() if h >= oldest}
        write_atomic(self._path(key), json.dumps({"key": [self.base_url, *key], "hours": merged}))


def _date_windows(start: datetime, end: datetime) -> list[tuple[date, date]]:
    """[since, until) date windows of at most 7 days covering [start, end) (OONI's hourly-grain limit)."""
    first = start.date()
    last = (end - timedelta(microseconds=1)).date() + timedelta(days=1)
    out = []
    d = first
    while d < last:
        out.append((d, min(last, d + MAX_HOURLY_RANGE)))
        d += MAX_HOURLY_RANGE
    return out
