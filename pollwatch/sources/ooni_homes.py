"""OONI: which of a batch's networks are measured from more than one of its countries, and so which request each
network goes in.

A batched OONI request lists several countries in `probe_cc`, and the aggregation API filters `probe_cc IN (...)`
but groups rows by hour and network only (ooni/backend oonimeasurements/routers/v1/aggregation.py): a network's
row is the sum of its tests in every listed country. A network one watch lists (a satellite ISP, a carrier
across a border) whose probes are in another listed country too would carry that country's failures into the
watch's series: a false alert. The rows carry no `probe_cc`, so the hourly answer cannot show it.

So before a batch of several countries asks for hours, it asks once where its networks are measured:
`GET /api/v1/aggregation?probe_cc=<the batch's countries>&probe_asn=<its networks>&test_name=<its tests>
&since=&until=&axis_x=probe_cc&axis_y=probe_asn` (no `time_grain`: neither axis is the date, so the default
`auto` only bounds the dates) answers one row per (probe_cc, probe_asn) with measurements in the window: the
counts plus `probe_cc` and `probe_asn`. The window is the 7 days up to the range's end (and the whole range when
it is longer). All the batch's tests go in one request (`test_name IN`): a network measured in another country by
any of them is treated as shared for all, which can only ask more requests alone, never fewer; up to
`asns_per_request` networks a request.

`discover` gives {network: the listed countries it was measured in}, and `plan_requests` (`OoniSource._requests`)
asks a network measured in a listed country that none of its watches is for with its watches' country alone (the
other networks stay batched); a country whose watches share a network with another country's is asked alone with
all its networks, as a single watch's tick would. The answer is kept on disk next to the hour cache (`HomesCache`,
one file per batch and day, older days dropped; `options.cache: false` turns it off with the hour cache), so it
costs one request per batch a day, not one per tick. If it cannot be had (an error, a timeout, a malformed answer)
`discover` returns None: every country is then asked alone this tick (the safe split; the data is still
collected) and each watch's run says so in an info notice.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from pollwatch.playbook import Service, Watch
from pollwatch.sources.base import (
    ShapeError,
    _Run,
    count_shared_request,
    read_cache_json,
    shape_failure,
    write_atomic,
)
from pollwatch.sources.http import FetchError, HttpClient

WINDOW = timedelta(days=7)  # how far back a network's countries are looked for
KEEP_DAYS = 3  # discovery files of days older than this before the newest written are removed
MAX_FILE_BYTES = 4 * 2**20  # a kept answer larger than this is not read (put writes a few KiB)


class HomeRow(BaseModel):
    model_config = ConfigDict(extra="ignore")

    probe_cc: str
    probe_asn: int | str
    measurement_count: int


_ROWS = TypeAdapter(list[HomeRow])
_KEPT = TypeAdapter(dict[int, list[str]])  # HomesCache's "measured", as put writes it


def parse_homes(payload: Any) -> dict[int, set[str]]:
    """{network: countries with measurements} from an aggregation answer with axes probe_cc and probe_asn."""
    if not isinstance(payload, dict):
        raise ShapeError(f"expected a JSON object with 'result', got {type(payload).__name__}")
    if payload.get("error"):
        raise ShapeError(f"OONI reported an error: {str(payload['error'])[:200]}")
    result = payload.get("result")
    if isinstance(result, dict):
        result = [result]
    if not isinstance(result, list):
        raise ShapeError(f"'result' should be a list of rows, got {type(result).__name__}")
    try:
        rows = _ROWS.validate_python(result)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ShapeError(f"row {'.'.join(str(x) for x in err['loc'])}: {err['msg']}") from None
    out: dict[int, set[str]] = {}
    for r in rows:
        try:
            asn = int(str(r.probe_asn).upper().removeprefix("AS"))
        except ValueError:
            raise ShapeError(f"unreadable probe_asn {str(r.probe_asn)[:40]!r}") from None
        if r.measurement_count > 0:
            out.setdefault(asn, set()).add(r.probe_cc.upper())
    return out


def window(start: datetime, end: datetime) -> tuple[date, date]:
    """[since, until) dates: the days up to the range's end (its day included), at least `WINDOW` long."""
    until = (end - timedelta(microseconds=1)).date() + timedelta(days=1)
    return min(start.date(), until - WINDOW), until


class HomesCache:
    """Discovery answers on disk: `homes-<day>-<digest>.json` in the OONI cache directory (`HourCache`'s), one per
    (base URL, countries, networks, tests, window) and day (the range's end's). Writing one removes those of days
    `KEEP_DAYS` older."""

    def __init__(self, base: Path, base_url: str) -> None:
        self.base = base
        self.base_url = base_url

    def _path(self, key: tuple[str, ...], day: date) -> Path:
        digest = hashlib.sha256(json.dumps([self.base_url, *key]).encode()).hexdigest()[:32]
        return self.base / f"homes-{day.isoformat()}-{digest}.json"

    def get(self, key: tuple[str, ...], day: date) -> dict[int, set[str]] | None:
        """The kept answer, or None (a refetch) for a file that is missing, not a regular file (a directory, a
        FIFO, a link to a device), larger than `MAX_FILE_BYTES`, or not what `put` writes."""
        data = read_cache_json(self._path(key, day), MAX_FILE_BYTES)
        try:
            return {int(a): set(ccs) for a, ccs in _KEPT.validate_python(data["measured"]).items()}
        except (KeyError, TypeError, ValueError):  # ValidationError is a ValueError
            return None

    def put(self, key: tuple[str, ...], day: date, measured: dict[int, set[str]]) -> None:
        text = json.dumps(
            {"key": [self.base_url, *key], "measured": {str(a): sorted(c) for a, c in sorted(measured.items())}}
        )
        if not write_atomic(self._path(key, day), text):
            return
        oldest = f"homes-{(day - timedelta(days=KEEP_DAYS)).isoformat()}"
        for old in self.base.glob("homes-*.json"):
            if old.name < oldest:
                try:
                    old.unlink(missing_ok=True)
                except OSError:  # a directory, no permission: kept, as a file that cannot be written is
                    pass


Members = list[tuple[_Run, Service]]  # the (watch's run, service) pairs of one test


async def discover(
    http: HttpClient,
    cache: HomesCache | None,
    tests: list[Members],
    asns_of: Callable[[Watch], list[int]],
    per_request: int,
) -> dict[int, set[str]] | None:
    """Where a batch's networks are measured ({}: a batch of one country, whose requests sum no other country's
    tests), or None: unknown (see `measured_in`)."""
    runs = list({id(r): r for members in tests for r, _ in members}.values())
    if len({r.country for r in runs}) < 2:
        return {}
    networks = {a: None for r in runs for a in asns_of(r.watch)}
    names = [s.test for members in tests for _, s in members]
    return await measured_in(http, cache, runs, networks, names, per_request)


def plan_requests(
    members: Members, asns_of: Callable[[Watch], list[int]], measured: dict[int, set[str]] | None, per_request: int
) -> list[tuple[Members, str, tuple[int, ...]]]:
    """(watches served, probe_cc, networks) of each request for one test, up to `per_request` networks. OONI sums
    a network's rows over the listed countries, so: a network in the watches of two countries would carry both
    countries' tests into each, and those countries are asked alone (all their networks, as if collected alone);
    a network `measured` in a listed country none of its watches is for is asked with its watches' country alone;
    `measured` None (unknown): every country alone. The other networks share requests across countries."""
    owners: dict[int, set[str]] = {}
    for run, _ in members:
        for a in asns_of(run.watch):
            owners.setdefault(a, set()).add(run.country)
    listed = {r.country for r, _ in members}
    split = {cc for ccs in owners.values() if len(ccs) > 1 for cc in ccs} if measured is not None else listed
    alone = {a for a, ccs in (measured or {}).items() if a in owners and (ccs & listed) - owners[a]}
    batches: dict[str | None, dict[int, None]] = {}  # None: the networks no country is asked alone for, together
    for run, _ in members:
        for a in asns_of(run.watch):
            batches.setdefault(run.country if run.country in split or a in alone else None, {})[a] = None
    out = []
    for cc, asns in batches.items():
        mine = [(r, s) for r, s in members if (r.country == cc if cc is not None else r.country not in split)]
        for i in range(0, len(asns), per_request):
            group = tuple(list(asns)[i : i + per_request])
            served = [(r, s) for r, s in mine if set(asns_of(r.watch)) & set(group)]
            out.append((served, cc if cc is not None else ",".join(sorted({r.country for r, _ in served})), group))
    return out


async def measured_in(
    http: HttpClient,
    cache: HomesCache | None,
    runs: list[_Run],
    networks: dict[int, None],
    tests: list[str],
    per_request: int,
) -> dict[int, set[str]] | None:
    """{network: the batch's countries it was measured in} (see the module docstring); None when OONI could not
    say (each run's info notes it). `runs` share one range; `networks` are all their networks, in order."""
    countries = ",".join(sorted({r.country for r in runs}))
    since, until = window(runs[0].start, runs[0].end)
    day = until - timedelta(days=1)  # the range's end's
    out: dict[int, set[str]] = {}
    listed = list(networks)
    for i in range(0, len(listed), per_request):
        group = listed[i : i + per_request]
        key = ("homes", countries, ",".join(map(str, group)), ",".join(sorted(set(tests))), since.isoformat())
        found = cache.get(key, day) if cache is not None else None
        if found is None:
            params = {
                "probe_cc": countries,
                "probe_asn": ",".join(f"AS{a}" for a in group),
                "test_name": ",".join(sorted(set(tests))),
                "since": since.isoformat(),
                "until": until.isoformat(),
                "axis_x": "probe_cc",
                "axis_y": "probe_asn",
            }
            count_shared_request(runs)
            try:
                found = parse_homes((await http.get_json("/api/v1/aggregation", params)).payload)
            except (FetchError, ShapeError) as exc:
                why = shape_failure(exc) if isinstance(exc, ShapeError) else exc
                for r in runs:
                    r.info.append(
                        f"could not ask OONI which networks are measured in more than one of the batch's countries "
                        f"({why}): each country asked alone this tick (its data still collected)"
                    )
                return None
            if cache is not None:
                cache.put(key, day, found)
        for a, ccs in found.items():
            out.setdefault(a, set()).update(ccs)
    return out
