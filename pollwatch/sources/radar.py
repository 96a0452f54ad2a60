"""Cloudflare Radar: verified outage annotations and traffic anomalies, kept with their labels.

Used only when an API token is configured: passed in (`token=`), or `POLLWATCH_RADAR_API_TOKEN`
through `pollwatch.settings` (Prefect flows may load it from a Secret block and pass it in).
The token travels in the `Authorization: Bearer` header only; it never appears in URLs,
provenance, notices, gaps, errors or logs (the HTTP layer scrubs it, in any encoding, from what Cloudflare
or anything in between answers: `pollwatch.redact`).

Requests and parameters as cloudflare/api-schemas openapi.json declares them (operations
radar-get-annotations-outages, radar-get-traffic-anomalies): `limit` and `offset` page, and
pages are read while full (`options.limit`, 100; at most `options.pages`, 5). Annotations are
often published hours after the outage began, so both are asked from the range's start less
`options.lookback_hours` (48): an annotation published late, with an earlier start, is picked up
by the next collect; records are kept once per id.

- `GET /radar/annotations/outages?location=CC&dateStart=&dateEnd=&limit=&offset=` ->
  `result.annotations[]` with `outage.outageCause` / `outage.outageType`, `scope`, `asns`,
  `locations`, `startDate`, `endDate`, `description`, `linkedUrl`.
- `GET /radar/traffic_anomalies?location=CC&dateStart=&dateEnd=&limit=&offset=` ->
  `result.trafficAnomalies[]` with `type` (LOCATION, AS), `status` (VERIFIED, UNVERIFIED),
  `asnDetails`, `locationDetails`, `startDate`, `endDate`.
Both arrive in Cloudflare's envelope `{success, errors, messages, result}` and become
`Corroboration` records (cause and type labels for attribution), not observations.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from pydantic import SecretStr

from pollwatch.models import entity_key
from pollwatch.playbook import SourceConfig, Watch
from pollwatch.settings import get_settings
from pollwatch.sources.base import Corroboration, ShapeError, Source, _Run, count_shared_request, shape_failure
from pollwatch.sources.http import FetchError, Fetched, HttpClient, Sleep
from pollwatch.timeutil import parse_time_or_none

ANNOTATIONS = "outage_annotations"
ANOMALIES = "traffic_anomalies"
LOOKBACK_HOURS = 48  # annotations are published late: each collect asks this far back before its range


def _result(payload: Any, key: str) -> list[Any]:
    if not isinstance(payload, dict) or "result" not in payload:
        got = sorted(payload)[:6] if isinstance(payload, dict) else type(payload).__name__
        raise ShapeError(f"expected Cloudflare's envelope with 'result', got {got}")
    if payload.get("success") is False:
        errs = "; ".join(
            str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in payload.get("errors") or []
        )
        raise ShapeError(f"Cloudflare reported failure: {errs[:200]}")
    result = payload["result"]
    if not isinstance(result, dict) or not isinstance(result.get(key), list):
        raise ShapeError(f"'result.{key}' should be a list")
    return result[key]


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class RadarSource(Source):
    """Cloudflare Radar client (see the module docstring)."""

    name = "radar"
    default_base_url = "https://api.cloudflare.com/client/v4"
    default_max_response = 4 * 2**20  # at most `limit` (100) records a request: a few hundred kB

    def __init__(
        self,
        config: SourceConfig | None = None,
        *,
        token: SecretStr | str | None = None,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        super().__init__(config, base_url=base_url, transport=transport, sleep=sleep)
        if isinstance(token, str):
            token = SecretStr(token)
        self._token: SecretStr | None = token if token is not None else get_settings().radar_api_token

    def __repr__(self) -> str:
        return f"RadarSource(base_url={self.base_url!r}, token={'set' if self.configured else 'unset'})"

    @property
    def configured(self) -> bool:
        return bool(self._token and self._token.get_secret_value())

    def expected(self, watch: Watch) -> list[tuple[str, str | None]]:
        return [(watch.country or "", ANNOTATIONS), (watch.country or "", ANOMALIES)]

    async def _collect(self, run: _Run) -> None:
        await self._collect_many([run])

    async def _collect_many(self, runs: list[_Run]) -> None:
        """One watch asks for its `location`; a batch asks once for every location (the records say which
        countries they concern: `locations`, `locationDetails`, `asnDetails.location`) and each watch keeps its
        own country's, so a batch costs the requests of one watch whatever its size."""
        if not self.configured:
            for run in runs:
                run.info.append("no API token configured (POLLWATCH_RADAR_API_TOKEN): Cloudflare Radar skipped")
            return
        assert self._token is not None
        secret = self._token.get_secret_value()
        # annotations are often published after the outage began: ask back `lookback_hours` so a late one is seen
        lookback = timedelta(hours=float(self.options.get("lookback_hours", LOOKBACK_HOURS)))
        for run in runs:
            run.expected = self.expected(run.watch)
        params: dict[str, Any] = {
            "dateStart": _iso(min(r.start for r in runs) - lookback),
            "dateEnd": _iso(max(r.end for r in runs)),
            "format": "json",
        }
        if len(runs) == 1:
            params = {"location": runs[0].country, **params}
        async with self.client(headers={"Authorization": f"Bearer {secret}"}, secrets=[secret]) as http:
            await asyncio.gather(
                self._pages(
                    http, runs, "/radar/annotations/outages", params, "annotations", ANNOTATIONS, self._annotation
                ),
                self._pages(
                    http, runs, "/radar/traffic_anomalies", params, "trafficAnomalies", ANOMALIES, self._anomaly
                ),
            )
            if len(runs) == 1:
                runs[0].account(http)

    async def _pages(
        self, http: HttpClient, runs: list[_Run], path: str, params: dict[str, Any], key: str, signal: str, parse: Any
    ) -> None:
        """Pages of `limit` records (`offset` onwards) while full, at most `options.pages`; each record once (by id),
        kept by the watches of the countries it concerns (a single watch's by its own)."""
        limit = max(1, int(self.options.get("limit", 100)))
        pages = max(1, int(self.options.get("pages", 5)))
        seen = {id(r): {c.id for c in r.result.corroborations} for r in runs}
        by_country: dict[str, list[_Run]] = {}
        for run in runs:
            by_country.setdefault(run.country, []).append(run)
        try:
            for page in range(pages):
                count_shared_request(runs)
                fetched = await http.get_json(path, {**params, "limit": limit, "offset": page * limit})
                items = _result(fetched.payload, key)
                for item in items:
                    targets = runs if len(runs) == 1 else [r for c in _countries(item) for r in by_country.get(c, [])]
                    for run in targets:
                        rec = parse(run, item, fetched)
                        if rec is not None and rec.id not in seen[id(run)]:
                            seen[id(run)].add(rec.id)
                            run.result.corroborations.append(rec)
                if len(items) < limit:
                    break
            else:
                for run in runs:
                    run.notice(
                        f"radar: more than {pages * limit} {key} for "
                        f"{run.country if len(runs) == 1 else 'a batch of watches'}; the rest were not read "
                        "(sources.radar.options.pages)"
                    )
        except (FetchError, ShapeError) as exc:
            err = shape_failure(exc) if isinstance(exc, ShapeError) else exc
            for run in runs:
                reason = run.failed(err, signal)
                run.gap(run.country, signal, reason)

    def _annotation(self, run: _Run, item: Any, fetched: Fetched) -> Corroboration | None:
        if not isinstance(item, dict):
            raise ShapeError(f"an annotation should be an object, got {type(item).__name__}")
        start = parse_time_or_none(item.get("startDate"))
        if start is None:
            raise ShapeError("an annotation has no readable startDate")
        outage = item.get("outage") or {}
        asns = [int(a) for a in item.get("asns") or [] if str(a).isdigit()]
        entity = entity_key(run.country, None, asns[0], None) if len(asns) == 1 else run.country
        return Corroboration(
            source=self.name,
            kind="radar_annotation",
            id=f"radar-annotation:{item.get('id')}",
            country=run.country,
            entity=entity,
            entity_type=(item.get("scope") or ("asn" if len(asns) == 1 else "location")),
            entity_code=",".join(str(a) for a in asns) or None,
            datasource=item.get("dataSource"),
            start=start,
            end=parse_time_or_none(item.get("endDate")),
            cause=outage.get("outageCause") if isinstance(outage, dict) else None,
            outage_type=outage.get("outageType") if isinstance(outage, dict) else None,
            status=item.get("eventType"),
            description=item.get("description"),
            url=item.get("linkedUrl"),
            provenance=fetched.provenance(),
        )

    def _anomaly(self, run: _Run, item: Any, fetched: Fetched) -> Corroboration | None:
        if not isinstance(item, dict):
            raise ShapeError(f"a traffic anomaly should be an object, got {type(item).__name__}")
        start = parse_time_or_none(item.get("startDate"))
        if start is None:
            raise ShapeError("a traffic anomaly has no readable startDate")
        asn_details = item.get("asnDetails") or {}
        asn = str(asn_details.get("asn", "")) if isinstance(asn_details, dict) else ""
        entity = entity_key(run.country, None, int(asn), None) if asn.isdigit() else run.country
        return Corroboration(
            source=self.name,
            kind="radar_anomaly",
            id=f"radar-anomaly:{item.get('uuid')}",
            country=run.country,
            entity=entity,
            entity_type=item.get("type"),
            entity_code=asn or (item.get("locationDetails") or {}).get("code"),
            start=start,
            end=parse_time_or_none(item.get("endDate")),
            status=item.get("status"),
            description=(asn_details.get("name") if isinstance(asn_details, dict) else None),
            provenance=fetched.provenance(),
        )


def _countries(item: Any) -> list[str]:
    """The countries a Radar record concerns: an annotation's `locations`, an anomaly's location or its ASN's."""
    if not isinstance(item, dict):
        return []
    out = [str(c).upper() for c in item.get("locations") or [] if isinstance(c, str)]
    asn = item.get("asnDetails")
    for details in (item.get("locationDetails"), asn.get("location") if isinstance(asn, dict) else None):
        if isinstance(details, dict) and isinstance(details.get("code"), str):
            out.append(details["code"].upper())
    return list(dict.fromkeys(out))
