"""IODA's own outage records, `GET /outages/alerts` and `GET /outages/events`, as `Corroboration` records for
attribution: for one watch (its country, and by `relatedTo` its regions and networks) or for a batch of watches
(their codes in one request). Mixed into `pollwatch.sources.ioda.IodaSource`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any


from pollwatch.models import entity_key
from pollwatch.sources.base import Corroboration, ShapeError, _Run, count_shared_request, shape_failure
from pollwatch.sources.http import FetchError, Fetched, HttpClient
from pollwatch.sources.ioda_api import (
    OUTAGES_PAGE,
    OUTAGES_PAGES,
    _envelope_data,
    _num,
    _record_code,
    _record_entity,
    _ts,
)


class IodaOutages:
    """The outage-record half of IodaSource (it provides `options`, `_codes` and `_explicit_region_codes`)."""

    async def _corroboration(self, http: HttpClient, run: _Run) -> None:
        """IODA's own outage alerts and events for the country, its regions and its networks.

        `/outages/alerts` and `/outages/events` take the entity as query parameters (entityType,
        entityCode, relatedTo; InetIntel/ioda-api src/Controller/OutagesController.php): the entity
        in the path is no route (404). Pages of `limit` records are followed while full."""
        cc = run.country
        base = {"from": int(run.start.timestamp()), "until": int(run.end.timestamp())}
        requests = []
        for kind in ("alerts", "events"):
            requests.append((kind, {**base, "entityType": "country", "entityCode": cc}))
            requests += [
                (kind, {**base, "entityType": etype, "relatedTo": f"country/{cc}"}) for etype in ("region", "asn")
            ]
        results = await asyncio.gather(*(self._records(http, [run], kind, p) for kind, p in requests))
        for (kind, _), items in zip(requests, results):
            self._keep_records(run, kind, items)

    async def _corroboration_by_codes(
        self, http: HttpClient, runs: list[_Run], kind: str, etype: str, group: list[tuple[_Run, str, str]]
    ) -> None:
        """A batch's outage records of one entity type, asked for by a list of codes (the repository filters
        `metaCode IN` the comma-separated `entityCode`), each record kept by every watch that tracks its entity."""
        by_code: dict[str, list[_Run]] = {}
        for run, code, _ in group:
            by_code.setdefault(code, [])
            if run not in by_code[code]:
                by_code[code].append(run)
        served = list({id(r): r for rs in by_code.values() for r in rs}.values())
        start, end = served[0].start, served[0].end
        params = {
            "from": int(start.timestamp()),
            "until": int(end.timestamp()),
            "entityType": etype,
            "entityCode": ",".join(by_code),
        }
        items = await self._records(http, served, kind, params)
        for item, fetched in items:
            code = _record_code(item, kind)
            for run in by_code.get(code or "", []):
                self._keep_records(run, kind, [(item, fetched)])

    def _keep_records(self, run: _Run, kind: str, items: list[tuple[Any, Fetched]]) -> None:
        parse = self._alert if kind == "alerts" else self._event
        seen = run.extra.setdefault("record_ids", set())
        for item, fetched in items:
            try:
                rec = parse(run, item, fetched)
            except ShapeError as exc:
                run.failed(shape_failure(exc), f"outages {kind}")
                return
            if rec is not None and rec.id not in seen:
                seen.add(rec.id)
                run.result.corroborations.append(rec)

    async def _records(
        self, http: HttpClient, runs: list[_Run], kind: str, params: dict[str, Any]
    ) -> list[tuple[Any, Fetched]]:
        """The raw records of one query, page by page while pages are full; failures go to every run it serves."""
        limit = max(1, int(self.options.get("records_per_page", OUTAGES_PAGE)))
        pages = max(1, int(self.options.get("record_pages", OUTAGES_PAGES)))
        out: list[tuple[Any, Fetched]] = []
        try:
            for page in range(pages):
                count_shared_request(runs)
                fetched = await http.get_json(f"/outages/{kind}", {**params, "limit": limit, "page": page})
                data = _envelope_data(fetched.payload)
                if data is None:
                    break
                if not isinstance(data, list):
                    raise ShapeError(f"'data' should be a list of {kind}, got {type(data).__name__}")
                out += [(item, fetched) for item in data]
                if len(data) < limit:
                    break
            else:
                for run in runs:
                    run.notice(
                        f"ioda: more than {pages * limit} outage {kind} for {params.get('entityType')} in "
                        f"{run.country if len(runs) == 1 else 'a batch of watches'}; the rest were not read "
                        "(sources.ioda.options.record_pages)"
                    )
        except (FetchError, ShapeError) as exc:
            if isinstance(exc, ShapeError):
                exc = shape_failure(exc)
            for run in runs:
                run.failed(exc, f"outages {kind}")
        return out

    def _entity(self, run: _Run, etype: str | None, code: str | None) -> str:
        cc = run.country
        if etype == "asn" and code and code.isdigit():
            return entity_key(cc, None, int(code), None)
        if etype == "region" and code:
            codes = run.extra.get("region_codes") or self._codes or self._explicit_region_codes(run.watch)
            back = {str(v): str(k) for k, v in codes.items() if v is not None}
            return entity_key(cc, back.get(code, code), None, None)
        return cc

    def _alert(self, run: _Run, item: Any, fetched: Fetched) -> Corroboration | None:
        if not isinstance(item, dict):
            raise ShapeError(f"an alert should be an object, got {type(item).__name__}")
        etype, code, _ = _record_entity(item)
        when = _ts(item.get("time"))
        if when is None:
            raise ShapeError("an alert has no readable 'time'")
        ds = item.get("datasource")
        rid = f"ioda-alert:{etype}/{code}:{ds}:{int(when.timestamp())}:{item.get('level')}"
        return Corroboration(
            source="ioda",
            kind="ioda_alert",
            id=rid,
            country=run.country,
            entity=self._entity(run, etype, code),
            entity_type=etype,
            entity_code=code,
            datasource=ds,
            start=when,
            level=item.get("level"),
            status=item.get("condition"),
            value=_num(item.get("value")),
            expected=_num(item.get("historyValue")),
            description=item.get("method"),
            provenance=fetched.provenance(),
        )

    def _event(self, run: _Run, item: Any, fetched: Fetched) -> Corroboration | None:
        if not isinstance(item, dict):
            raise ShapeError(f"an event should be an object, got {type(item).__name__}")
        if "location" in item:  # codf format (the default)
            etype, _, code = str(item.get("location")).partition("/")
            start = _ts(item.get("start"))
            duration = _num(item.get("duration"))
            end = start + timedelta(seconds=duration) if start and duration is not None else None
            name = item.get("location_name")
        else:  # ioda format
            etype, entity_code, name = _record_entity(item)
            code = entity_code or ""
            start, end = _ts(item.get("from")), _ts(item.get("until"))
        if start is None:
            raise ShapeError("an event has no readable start")
        ds = item.get("datasource")
        rid = f"ioda-event:{etype}/{code}:{ds}:{int(start.timestamp())}"
        return Corroboration(
            source="ioda",
            kind="ioda_event",
            id=rid,
            country=run.country,
            entity=self._entity(run, etype, code or None),
            entity_type=etype,
            entity_code=code or None,
            datasource=ds,
            start=start,
            end=end,
            score=_num(item.get("score")),
            description=name or item.get("method"),
            provenance=fetched.provenance(),
        )
