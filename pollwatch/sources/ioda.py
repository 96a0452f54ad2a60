"""IODA v2: connectivity signals for a country, its regions and its networks, plus IODA's own outage records.

Signals come from `GET /signals/raw/{entityType}/{entityCode}?from=&until=&datasource=` (unix
seconds; IODA refuses ranges of 100 days or more, so longer ranges are split). Several entity
codes go in one request, comma separated (`options.entities_per_request`, default 50). The
response envelope is `{type, metadata, requestParameters, error, perf, data, copyright}` where
`data` holds, per entity, a list of series `{entityType, entityCode, datasource, from, until,
step, nativeStep, values}`; value i is at `from + i*step` and `null` means no data.

Datasources map to pollwatch signals: bgp -> bgp, ping-slash24 -> active_probing,
merit-nt -> telescope, gtr -> gtr (Google traffic, only when configured). By default the
datasources are those whose signal the watch's playbook assigns to source `ioda`;
`options.datasources` overrides. IODA region codes are numeric (NetAcuity regions named after
Natural Earth admin-1): `options.region_codes: {KZ-ALA: "1234"}` maps them explicitly; a region
left unmapped is looked up by its playbook aliases, then its name, in `GET
/entities/query?entityType=region&relatedTo=country/CC`
(once a day, kept in memory and under `$POLLWATCH_HOME/cache/ioda/`; case, accents and words such as "oblysy",
"province" or "region" are
ignored). A region IODA does not know becomes a gap with one warning naming IODA's regions, not
a request that comes back empty every tick; when the look-up itself fails the codes are sent as
they are.

IODA's own outage records: `GET /outages/alerts` and `GET /outages/events` with
`entityType`, `entityCode` (the country) or `relatedTo=country/CC` (its regions, its networks),
`from`, `until`, `limit`, `page` as query parameters (InetIntel/ioda-api
src/Controller/OutagesController.php), become `Corroboration` records: alerts as
src/Entity/OutagesAlertNormalizer.php writes them (`datasource, entity{type,code,name}, time,
level, condition, value, historyValue, method`), events in the default `codf` format of
src/Entity/OutagesEventNormalizer.php (`location` "type/code", `location_name`, `start`,
`duration`, `method`, `datasource`, `score`, `overlaps_window`).
`gtr` (Google traffic) is asked for the country only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any


from pollwatch.models import Observation, entity_key
from pollwatch.playbook import Watch
from pollwatch.sources.base import (
    RunClient,
    ShapeError,
    Source,
    _Run,
    count_shared_request,
    shape_failure,
    write_atomic,
)
from pollwatch.sources.http import FetchError, HttpClient
from pollwatch.timeutil import floor_time
from pollwatch.sources.ioda_api import (
    COUNTRY_ONLY,
    DATASOURCE_SIGNALS,
    DEFAULT_DATASOURCES,
    IodaSeries,
    MAX_RANGE,
    REGION_LIST_TTL,
    _REGION_LISTS,
    _code_chunks,
    _time_chunks,
    parse_regions,
    parse_signals,
    region_name_key,
)
from pollwatch.sources.ioda_outages import IodaOutages


class IodaSource(IodaOutages, Source):
    """IODA v2 client (see the module docstring)."""

    name = "ioda"
    default_base_url = "https://api.ioda.inetintel.cc.gatech.edu/v2"
    _codes: dict[str, str | None] | None = None  # the last collect's region codes, to map IODA's records back

    # --- what to ask for ------------------------------------------------------------------
    def datasources(self, watch: Watch) -> list[str]:
        configured = self.options.get("datasources")
        if configured:
            return [str(d) for d in configured]
        wanted = [
            ds
            for ds, sig in DATASOURCE_SIGNALS.items()
            if sig in watch.signals and watch.signals[sig].source == self.name
        ]
        return wanted or list(DEFAULT_DATASOURCES)

    def entities(self, watch: Watch, region_codes: dict[str, str | None] | None = None) -> list[tuple[str, str, str]]:
        """(IODA entity type, IODA code, pollwatch entity key) for the country, its regions and networks.

        `region_codes` maps the watch's region codes to IODA's (None: IODA has no such region, left out);
        without it the explicit `options.region_codes` apply and other codes are sent as they are."""
        cc = watch.country or ""
        codes = region_codes if region_codes is not None else self._explicit_region_codes(watch)
        out = [("country", cc, cc)]
        out += [
            ("region", str(codes.get(r.code, r.code)), entity_key(cc, r.code, None, None))
            for r in watch.regions
            if codes.get(r.code, r.code) is not None
        ]
        out += [("asn", str(p.asn), entity_key(cc, None, p.asn, None)) for p in watch.providers]
        return out

    def _explicit_region_codes(self, watch: Watch | None = None) -> dict[str, str | None]:
        """`options.region_codes`: the watch's own (a batch's watches each have theirs), else this source's."""
        own = watch.sources.get(self.name) if watch is not None else None
        codes = (own.options.get("region_codes") if own is not None else None) or self.options.get("region_codes")
        return {str(k): str(v) for k, v in (codes or {}).items()}

    async def region_codes(self, http: HttpClient, run: _Run) -> dict[str, str | None]:
        """The watch's region codes -> IODA's: explicit ones, then looked up by name (see the module docstring)."""
        codes = self._explicit_region_codes(run.watch)
        todo = [r for r in run.watch.regions if r.code not in codes and not r.code.isdigit()]
        if not todo or self.options.get("resolve_regions", True) is False:
            return codes
        known = await self._region_list(http, run)
        if known is None:
            return codes  # the look-up failed (already a notice): send the codes as they are
        unknown = []
        for r in todo:
            code = next((known[k] for k in map(region_name_key, [*r.aliases, r.name, r.code]) if k in known), None)
            codes[r.code] = code
            if code is None:
                unknown.append(r)
                for ds in self.datasources(run.watch):
                    run.gap(
                        entity_key(run.country, r.code, None, None),
                        DATASOURCE_SIGNALS.get(ds, ds),
                        f"IODA has no region named {r.name!r} in {run.country}",
                    )
        if unknown:
            names = ", ".join(sorted(known)) or "none"
            run.notice(
                f"ioda: no IODA region for {', '.join(f'{r.code} ({r.name})' for r in unknown)}: map them in "
                f"sources.ioda.options.region_codes (IODA's regions of {run.country}, loosely named: {names})"
            )
        return codes

    async def _region_list(self, http: HttpClient, run: _Run) -> dict[str, str] | None:
        cache_key = (self.base_url, run.country)
        cached = _REGION_LISTS.get(cache_key)
        if cached and time.monotonic() - cached[0] < REGION_LIST_TTL:
            return cached[1]
        path = self._region_cache_path(run.country)
        try:  # on disk too: under `serve` every tick is a process of its own
            stored = json.loads(path.read_text(encoding="utf-8"))
            if (
                time.time() - float(stored["fetched"]) < REGION_LIST_TTL
                and isinstance(stored.get("regions"), dict)
                and stored["regions"]
            ):
                _REGION_LISTS[cache_key] = (time.monotonic(), stored["regions"])
                return stored["regions"]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no or unreadable cache: ask IODA
        try:
            fetched = await http.get_json(
                "/entities/query", {"entityType": "region", "relatedTo": f"country/{run.country}"}
            )
            known = parse_regions(fetched.payload)
            if not known:
                raise ShapeError(f"entities: IODA listed no regions for {run.country}")
        except (FetchError, ShapeError) as exc:
            run.failed(shape_failure(exc) if isinstance(exc, ShapeError) else exc, "entities region")
            return None
        _REGION_LISTS[cache_key] = (time.monotonic(), known)
        write_atomic(path, json.dumps({"base_url": self.base_url, "fetched": time.time(), "regions": known}))
        return known

    def _region_cache_path(self, country: str) -> Path:
        return self.cache_dir() / f"regions-{country}-{hashlib.sha256(self.base_url.encode()).hexdigest()[:12]}.json"

    def expected(self, watch: Watch) -> list[tuple[str, str | None]]:
        return [
            (key, DATASOURCE_SIGNALS.get(ds, ds))
            for etype, _, key in self.entities(watch)
            for ds in self.datasources(watch)
            if etype == "country" or ds not in COUNTRY_ONLY
        ]

    # --- collection -----------------------------------------------------------------------
    async def _collect(self, run: _Run) -> None:
        async with self.client() as http:
            await self._collect_runs(http, [run])
            run.account(http)

    async def _collect_many(self, runs: list[_Run]) -> None:
        """Several watches' series in shared requests: per datasource and entity type, the codes of every watch
        whose range is the same (a batch's watches ticking together share it) go in requests of up to
        `entities_per_request` codes, and IODA's own outage records are asked for by entity code lists."""
        groups: dict[tuple[datetime, datetime], list[_Run]] = {}
        for run in runs:
            groups.setdefault((run.start, run.end), []).append(run)
        async with self.client() as http:
            await asyncio.gather(*(self._collect_runs(http, group) for group in groups.values()))

    async def _collect_runs(self, http: Any, runs: list[_Run]) -> None:
        """Runs with the same range: one watch (IODA's records by `relatedTo` its country) or a batch (by codes)."""
        per_request = max(1, int(self.options.get("entities_per_request", 50)))
        start, end = runs[0].start, runs[0].end
        chunks = _time_chunks(start, end, MAX_RANGE)
        for run in runs:
            run.expected = self.expected(run.watch)
        codes = await asyncio.gather(*(self.region_codes(RunClient(http, r) if r.batched else http, r) for r in runs))
        entities: dict[str, list[tuple[_Run, str, str]]] = {}  # IODA entity type -> (run, code, key)
        for run, run_codes in zip(runs, codes):
            run.extra["region_codes"] = run_codes
            for etype, code, key in self.entities(run.watch, run_codes):
                entities.setdefault(etype, []).append((run, code, key))
        self._codes = codes[-1]
        jobs = []
        for ds in dict.fromkeys(ds for r in runs for ds in self.datasources(r.watch)):
            for etype in ("country",) if ds in COUNTRY_ONLY else ("country", "region", "asn"):
                group = [e for e in entities.get(etype, []) if ds in self.datasources(e[0].watch)]
                for part in _code_chunks(group, per_request):
                    for c_start, c_end in chunks:
                        jobs.append((ds, etype, part, c_start, c_end))
        tasks = [self._signals(http, *job) for job in jobs]
        if len(runs) == 1 and self.options.get("corroboration", True):
            tasks.append(self._corroboration(http, runs[0]))
        elif len(runs) > 1:
            wanted = [r for r in runs if self.options.get("corroboration", True)]
            tasks += [
                self._corroboration_by_codes(http, wanted, kind, etype, part)
                for kind in ("alerts", "events")
                for etype in ("country", "region", "asn")
                for part in _code_chunks([e for e in entities.get(etype, []) if e[0] in wanted], per_request)
            ]
        await asyncio.gather(*tasks)

    async def _signals(
        self,
        http: HttpClient,
        ds: str,
        etype: str,
        group: list[tuple[_Run, str, str]],
        start: datetime,
        end: datetime,
    ) -> None:
        signal = DATASOURCE_SIGNALS.get(ds, ds)
        keys: dict[str, list[tuple[_Run, str]]] = {}
        for run, code, key in group:
            keys.setdefault(code, []).append((run, key))
        runs = list({id(r): r for r, _, _ in group}.values())
        path = f"/signals/raw/{etype}/{','.join(keys)}"
        count_shared_request(runs)
        try:
            fetched = await http.get_json(
                path, {"from": int(start.timestamp()), "until": int(end.timestamp()), "datasource": ds}
            )
            series = parse_signals(fetched.payload)
        except (FetchError, ShapeError) as exc:
            if isinstance(exc, ShapeError):
                exc = shape_failure(exc)
            reasons = {id(run): run.failed(exc, f"{ds} {etype}") for run in runs}
            for pairs in keys.values():
                for run, key in pairs:
                    run.gap(key, signal, reasons[id(run)], start, end)
            return
        seen: set[str] = set()
        prov = fetched.provenance()
        for s in series:
            if s.entityCode not in keys or s.datasource != ds:
                continue  # IODA may add entities or datasources we did not ask for
            seen.add(s.entityCode)
            sig = DATASOURCE_SIGNALS.get(s.datasource, s.datasource)
            if s.subtype and s.datasource == "gtr":
                sig = f"gtr.{s.subtype}"
            for run, key in keys[s.entityCode]:
                if s.nativeStep and s.step != s.nativeStep:
                    run.info.append(
                        f"{ds} {etype} {s.entityCode}: values aggregated to {s.step}s (native step {s.nativeStep}s)"
                    )
                self._points(
                    run,
                    key,
                    sig,
                    s,
                    start if start > run.start else floor_time(start, timedelta(seconds=s.step)),
                    end,
                    prov,
                )
        missing = [code for code in keys if code not in seen]
        for code in missing:
            for run, key in keys[code]:
                if not series:
                    run.failures["empty"] += 1
                    run.first_error.setdefault("empty", f"{ds} {etype}: no series returned ({fetched.url})")
                run.gap(key, signal, f"{ds}: IODA returned no series for {etype} {code}", start, end)

    @staticmethod
    def _points(run: _Run, key: str, signal: str, s: IodaSeries, lo: datetime, end: datetime, prov: Any) -> None:
        """Points in [lo, end): value i is at from + i*step; the first chunk keeps the
        point whose step covers its start.
        """
        country, region, asn = run.country, None, None
        if "/region=" in key:
            region = key.split("/region=", 1)[1]
        elif "/asn=" in key:
            asn = int(key.split("/asn=", 1)[1])
        for i, v in enumerate(s.values):
            t = datetime.fromtimestamp(s.from_ + i * s.step, tz=timezone.utc)
            if t < lo or t >= end:
                continue
            run.result.observations.append(
                Observation(
                    time=t,
                    source="ioda",
                    signal=signal,
                    country=country,
                    region=region,
                    asn=asn,
                    value=None if v is None else float(v),
                    provenance=prov,
                )
            )
