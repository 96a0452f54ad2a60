"""RIPEstat: the country's registered resources and its routing visibility over time.

- `GET /data/country-resource-list/data.json?resource=CC&v4_format=prefix`: the ASNs and IPv4/IPv6
  prefixes registered to the country (input for diffscans and for the coverage report). Kept as
  `CountryResources` with RIPEstat's `query_time`, and cached on disk under
  `$POLLWATCH_HOME/cache/ripestat/` for `options.resource_list_ttl_hours` (default 24).
- `GET /data/country-resource-stats/data.json?resource=CC&starttime=&endtime=&resolution=`: per
  period, `v4_prefixes_ris` (IPv4 prefixes seen in routing data) and `asns_ris` (ASNs seen).
  Each stat is valid for the periods of its `timeline`; it becomes observations of signals
  `ripe_visibility` (routed IPv4 prefixes) and `ripe_routed_asns`, one per resolution step.

Every call carries `sourceapp` (RIPEstat asks clients to identify themselves; `options.sourceapp`,
default "pollwatch"). Every response has RIPEstat's envelope `{status, status_code, messages, data, query_id, time,
...}`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pollwatch.models import Observation, Provenance
from pollwatch.playbook import Watch
from pollwatch.sources.base import ShapeError, Source, _Run, now_utc, shape_failure, write_atomic
from pollwatch.sources.http import FetchError, HttpClient
from pollwatch.timeutil import parse_duration, parse_time_or_none

VISIBILITY = "ripe_visibility"
ROUTED_ASNS = "ripe_routed_asns"


class CountryResources(BaseModel):
    """The Internet resources registered to a country, as RIPEstat knew them at `query_time`."""

    country: str
    asns: list[int] = Field(default_factory=list)
    ipv4: list[str] = Field(default_factory=list)
    ipv6: list[str] = Field(default_factory=list)
    query_time: datetime | None = None
    fetched_at: datetime
    provenance: Provenance | None = None


class _Stat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    timeline: list[dict[str, Any]]
    v4_prefixes_ris: int | None = None
    asns_ris: int | None = None


def _envelope(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        got = sorted(payload)[:6] if isinstance(payload, dict) else type(payload).__name__
        raise ShapeError(f"expected RIPEstat's envelope with a 'data' object, got {got}")
    status = payload.get("status", "ok")
    if status != "ok":
        msgs = "; ".join(str(m[-1]) if isinstance(m, list) else str(m) for m in payload.get("messages") or [])
        raise ShapeError(f"RIPEstat status {status!r}: {msgs[:200]}")
    return payload["data"]


def parse_resource_list(payload: Any, country: str) -> tuple[list[int], list[str], list[str], datetime | None]:
    data = _envelope(payload)
    res = data.get("resources")
    if not isinstance(res, dict):
        raise ShapeError("country-resource-list: 'data.resources' should be an object with asn/ipv4/ipv6 lists")
    for key in ("asn", "ipv4", "ipv6"):
        if not isinstance(res.get(key) or [], list):
            raise ShapeError(
                f"country-resource-list: 'data.resources.{key}' should be a list, got {type(res[key]).__name__}"
            )
    try:
        asns = sorted({int(str(a).upper().removeprefix("AS")) for a in res.get("asn") or []})
    except ValueError as exc:
        raise ShapeError(f"country-resource-list: unreadable ASN ({exc})") from None
    ipv4 = [str(p) for p in res.get("ipv4") or []]
    ipv6 = [str(p) for p in res.get("ipv6") or []]
    return asns, ipv4, ipv6, parse_time_or_none(data.get("query_time"))


def parse_resource_stats(payload: Any) -> list[_Stat]:
    data = _envelope(payload)
    stats = data.get("stats")
    if not isinstance(stats, list):
        raise ShapeError("country-resource-stats: 'data.stats' should be a list")
    try:
        return [_Stat.model_validate(s) for s in stats]
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ShapeError(
            f"country-resource-stats: field {'.'.join(str(x) for x in err['loc'])}: {err['msg']}"
        ) from None


class RipestatSource(Source):
    """RIPEstat Data API client (see the module docstring)."""

    name = "ripestat"
    default_base_url = "https://stat.ripe.net"
    resources: CountryResources | None = None  # the last country-resource-list seen by collect

    def resolution(self, start: datetime, end: datetime) -> str:
        configured = self.options.get("resolution")
        if configured:
            return str(configured)
        return "5m" if end - start <= timedelta(days=2) else "1h"

    def expected(self, watch: Watch) -> list[tuple[str, str | None]]:
        return [(watch.country or "", VISIBILITY), (watch.country or "", ROUTED_ASNS)]

    def _params(self, **params: Any) -> dict[str, Any]:
        """A call's parameters with `sourceapp`, which RIPEstat asks every client to send (stat.ripe.net/docs/data_api):
        `options.sourceapp`, default "pollwatch"."""
        return {**params, "sourceapp": str(self.options.get("sourceapp") or "pollwatch")}

    def _cache_path(self, country: str) -> Path:
        return self.cache_dir() / f"country-resource-list-{country}.json"

    async def country_resources(self, http: HttpClient, country: str, refresh: bool = False) -> CountryResources:
        """The country's ASNs and prefixes: from the on-disk cache while fresh, else from RIPEstat."""
        ttl = timedelta(hours=float(self.options.get("resource_list_ttl_hours", 24)))
        path = self._cache_path(country)
        if not refresh and path.is_file():
            try:
                cached = CountryResources.model_validate_json(path.read_text(encoding="utf-8"))
                if now_utc() - cached.fetched_at < ttl:
                    return cached
            except (ValueError, OSError):
                pass  # unreadable cache: fetch again
        fetched = await http.get_json(
            "/data/country-resource-list/data.json", self._params(resource=country, v4_format="prefix")
        )
        asns, ipv4, ipv6, qt = parse_resource_list(fetched.payload, country)
        res = CountryResources(
            country=country,
            asns=asns,
            ipv4=ipv4,
            ipv6=ipv6,
            query_time=qt,
            fetched_at=fetched.fetched_at,
            provenance=fetched.provenance(),
        )
        write_atomic(path, res.model_dump_json())  # a read-only home only costs a refetch next time
        return res

    async def _collect(self, run: _Run) -> None:
        async with self.client() as http:
            await self._fetch(http, run)
            run.account(http)

    async def _fetch(self, http: Any, run: _Run) -> None:
        """One country's calls (RIPEstat's data calls take one `resource` each: a batch shares the client)."""
        run.expected = self.expected(run.watch)
        await asyncio.gather(self._resources(http, run), self._stats(http, run))

    async def _resources(self, http: HttpClient, run: _Run) -> None:
        try:
            res = await self.country_resources(http, run.country)
        except (FetchError, ShapeError) as exc:
            run.failed(shape_failure(exc) if isinstance(exc, ShapeError) else exc, "country-resource-list")
            return
        self.resources = res
        unknown = [p for p in run.watch.providers if p.asn not in set(res.asns)]
        if unknown and res.asns:
            names = ", ".join(f"AS{p.asn} ({p.name})" for p in unknown)
            run.info.append(
                f"not registered to {run.country} per RIPEstat's country-resource-list ({len(res.asns)} ASNs): {names}"
            )

    async def _stats(self, http: HttpClient, run: _Run) -> None:
        res = self.resolution(run.start, run.end)
        step = parse_duration(res)
        params = self._params(
            resource=run.country,
            starttime=run.start.strftime("%Y-%m-%dT%H:%M:%S"),
            endtime=run.end.strftime("%Y-%m-%dT%H:%M:%S"),
            resolution=res,
        )
        try:
            fetched = await http.get_json("/data/country-resource-stats/data.json", params)
            stats = parse_resource_stats(fetched.payload)
        except (FetchError, ShapeError) as exc:
            reason = run.failed(shape_failure(exc) if isinstance(exc, ShapeError) else exc, "country-resource-stats")
            for sig in (VISIBILITY, ROUTED_ASNS):
                run.gap(run.country, sig, reason)
            return
        prov = fetched.provenance()
        seen: set[tuple[str, datetime]] = set()
        for st in stats:
            for period in st.timeline:
                p_start, p_end = parse_time_or_none(period.get("starttime")), parse_time_or_none(period.get("endtime"))
                if p_start is None:
                    continue
                p_end = p_end if p_end and p_end > p_start else p_start + step
                t = p_start
                if t < run.start:  # first step of the period at or after the range start
                    t += step * -(-(run.start - p_start) // step)
                while t < min(p_end, run.end):
                    for sig, val in ((VISIBILITY, st.v4_prefixes_ris), (ROUTED_ASNS, st.asns_ris)):
                        if (sig, t) in seen:
                            continue
                        seen.add((sig, t))
                        run.result.observations.append(
                            Observation(
                                time=t,
                                source=self.name,
                                signal=sig,
                                country=run.country,
                                value=None if val is None else float(val),
                                provenance=prov,
                            )
                        )
                    t += step
        if not seen:
            for sig in (VISIBILITY, ROUTED_ASNS):
                run.gap(
                    run.country, sig, f"country-resource-stats returned no statistics for the range ({fetched.url})"
                )
            run.failures["empty"] += 1
            run.first_error.setdefault("empty", f"country-resource-stats: no statistics ({fetched.url})")
