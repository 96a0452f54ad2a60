"""Fake IODA, OONI, RIPEstat and Cloudflare Radar APIs: real HTTP servers on 127.0.0.1, port 0.

Each fake follows its service's own code: a `routes` table (path, the query parameters the
service reads, the required ones, the upstream file it is taken from), the service's status
codes and error bodies, and `contract_problems()` checking every recorded request against the
table (tests/sources/test_sources_contract.py). Each serves the response shapes from small data the tests set themselves
(deterministic levels, drops, nulls, blocked services, records), and can misbehave on demand:

    with IodaFake() as ioda:
        ioda.drop("9198", start, end, factor=0.1)          # an outage in the data
        ioda.fail("500", times=2)                          # next two requests answer HTTP 500
        ioda.fail("hang", path="/signals/raw/asn")         # ASN requests hang past any timeout
        source = make_source("ioda", watch, base_url=ioda.url)

Fault modes: "500", "429" (with Retry-After: `retry_after`), "hang" (sleeps `hang_seconds`,
then answers), "truncated" (half a JSON body, HTTP 200), "wrong_shape" (valid JSON, wrong
structure), "empty" (a valid, empty result), "echo_auth" (HTTP 400 echoing the Authorization
header, to prove secrets are scrubbed), "echo" (HTTP `echo_status`, 200 by default, with the
API's own error shape quoting `echo_secrets`, or else the request's credential, in every encoding
of tests/fakes/hostile.py), "drip" (the real answer, one byte every `drip_interval` seconds),
"huge" (HTTP 200 with a valid JSON body of `huge_bytes` in the API's shape, with or without a
Content-Length: `huge_length`), "bomb" (a gzip-encoded body of a few hundred kB that inflates
to `bomb_bytes`). IODA's `noise` spreads its values around each entity's level and `published_only`
serves a bin only once it has ended and its share of `publish_delay` has passed (the bench measures from
then). `latency` delays every response and
`cache_responses` serves repeated queries from memory (benchmarks: the API's own work is not what they measure).
Every request is recorded in `requests` (path, query, headers).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.hostile import echo_text

FAULTS = ("500", "429", "hang", "truncated", "wrong_shape", "empty", "echo_auth", "echo", "drip", "huge", "bomb")


@dataclass
class Recorded:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True)
class Route:
    """One route of the real service, as its own code declares it: path pattern ({name} is one path
    segment), the query parameters it reads (`required` ones it refuses to go without) and the file."""

    pattern: str
    params: frozenset[str]
    required: frozenset[str] = frozenset()
    upstream: str = ""

    def match(self, path: str) -> dict[str, str] | None:
        want = [p for p in self.pattern.split("/") if p]
        got = [p for p in path.split("/") if p]
        if len(want) != len(got):
            return None
        out = {}
        for w, g in zip(want, got):
            if w.startswith("{") and w.endswith("}"):
                out[w[1:-1]] = g
            elif w != g:
                return None
        return out

    def problems(self, query: dict[str, str]) -> list[str]:
        """What a request's query does wrong by this route: parameters it does not read, required ones missing."""
        out = [f"unknown parameter {k!r}" for k in sorted(query) if k not in self.params]
        return out + [f"missing required parameter {k!r}" for k in sorted(self.required) if k not in query]


def route(pattern: str, params: str = "", required: str = "", upstream: str = "") -> Route:
    return Route(
        pattern, frozenset(params.split()) | frozenset(required.split()), frozenset(required.split()), upstream
    )


@dataclass
class _Fault:
    mode: str
    path: str = ""
    times: int | None = None  # None: until cleared
    query: dict[str, str] | None = None  # only requests whose query has these values


def _level(*parts: Any, lo: float = 100.0, hi: float = 5000.0) -> float:
    """A deterministic pseudo-random level for an entity (same parts, same level)."""
    h = int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8], 16)
    return round(lo + (hi - lo) * (h / 0xFFFFFFFF))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # a deep listen backlog: bursts of connections must not wait for SYN retries


class FakeAPI:
    """Base class: a threaded HTTP server with routing, fault injection and request recording."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.retry_after = "1"
        self.hang_seconds = 5.0
        self.echo_status = 200
        self.echo_secrets: list[str] = []
        self.drip_interval = 1.0
        self.huge_bytes = 200 * 10**6
        self.huge_length = True
        self.bomb_bytes = 50 * 10**6
        self.requests: list[Recorded] = []
        self.cache_responses = False  # benchmarks: serve repeated queries from memory, like a warm API
        self._cache: dict[str, tuple[int, bytes]] = {}
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> "FakeAPI":
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:  # noqa: N802
                api._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "FakeAPI":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.prefix}"

    prefix = ""

    # --- faults -----------------------------------------------------------------------------
    def fail(self, mode: str, times: int | None = None, path: str = "", query: dict[str, str] | None = None) -> None:
        """Misbehave on requests whose path starts with `path` (after the prefix) and whose query has the values of
        `query` (if given): `times` times or until `clear()`."""
        if mode not in FAULTS:
            raise ValueError(f"unknown fault {mode!r}; one of {FAULTS}")
        with self._lock:
            self._faults.append(_Fault(mode, path, times, query))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, path: str, query: dict[str, str]) -> str | None:
        with self._lock:
            for f in self._faults:
                if path.startswith(f.path) and all(query.get(k) == v for k, v in (f.query or {}).items()):
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            self._faults.remove(f)
                    return f.mode
        return None

    # --- serving ----------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        path = parts.path
        if self.prefix and path.startswith(self.prefix):
            path = path[len(self.prefix) :]
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.requests.append(Recorded(path, query, {k: v for k, v in h.headers.items()}))
        if self.latency:
            time.sleep(self.latency)
        fault = self._take_fault(path, query)
        status, headers, body = 200, {}, b""
        if fault == "hang":
            self._stop.wait(self.hang_seconds)
            fault = None
        if fault == "500":
            status, body = 500, b'{"error": "internal server error"}'
        elif fault == "429":
            status, headers, body = 429, {"Retry-After": self.retry_after}, b'{"error": "too many requests"}'
        elif fault == "echo_auth":
            status, body = (
                400,
                json.dumps({"error": f"bad request with Authorization {h.headers.get('Authorization')}"}).encode(),
            )
        elif fault == "echo":
            auth = h.headers.get("Authorization", "").removeprefix("Bearer ")
            message = echo_text(self.echo_secrets or [auth])
            status, body = self.echo_status, json.dumps(self.error_payload(message, path, query)).encode()
        elif fault in ("huge", "bomb"):
            return self._send_huge(h, path, query, fault)
        elif fault == "wrong_shape":
            body = json.dumps({"unexpected": [1, 2, 3], "note": "not the documented shape"}).encode()
        elif fault is None and self.cache_responses and h.path in self._cache:
            status, body = self._cache[h.path]
        else:
            try:
                status, payload = self.respond(path, query, h.headers, empty=(fault == "empty"))
            except Exception as exc:  # a bug in the fake must show up as a 500, not a hung client
                status, payload = 500, {"error": f"fake crashed: {exc!r}"}
            body = json.dumps(payload).encode()
            if fault is None and self.cache_responses:
                self._cache[h.path] = (status, body)
            if fault == "truncated":
                body = body[: max(1, len(body) // 2)]
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                h.send_header(k, v)
            h.end_headers()
            if fault == "drip":
                for i in range(len(body)):
                    if self._stop.wait(self.drip_interval):
                        break
                    h.wfile.write(body[i : i + 1])
                    h.wfile.flush()
            else:
                h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): fine

    def huge_parts(self, path: str, query: dict[str, str]) -> tuple[bytes, bytes, bytes]:
        """A JSON document in the API's shape as (head, item repeated as often as needed, tail)."""
        return (
            b'{"v": 0, "result": [',
            b'{"anomaly_count": 1, "measurement_count": 10}, ',
            b'{"anomaly_count": 1, "measurement_count": 10}]}',
        )

    def _send_huge(self, h: BaseHTTPRequestHandler, path: str, query: dict[str, str], fault: str) -> None:
        head, item, tail = self.huge_parts(path, query)
        size = self.huge_bytes if fault == "huge" else self.bomb_bytes
        count = max(0, (size - len(head) - len(tail)) // len(item))
        chunk = item * max(1, 2**20 // len(item))
        per_chunk = len(chunk) // len(item)

        def pieces():  # the body in ~1 MB pieces, never whole in the fake's memory
            yield head
            left = count
            while left > 0:
                n = min(left, per_chunk)
                yield chunk if n == per_chunk else item * n
                left -= n
            yield tail

        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            if fault == "bomb":
                packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
                body = b"".join(packer.compress(p) for p in pieces()) + packer.flush()
                h.send_header("Content-Encoding", "gzip")
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body)
                return
            if self.huge_length:
                h.send_header("Content-Length", str(len(head) + count * len(item) + len(tail)))
            else:
                h.send_header("Connection", "close")  # no length: the body ends when the connection does
                h.close_connection = True
            h.end_headers()
            for p in pieces():
                if self._stop.is_set():
                    break
                h.wfile.write(p)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading (its size limit): fine

    def respond(self, path: str, query: dict[str, str], headers: Any, empty: bool) -> tuple[int, Any]:
        raise NotImplementedError

    routes: tuple[Route, ...] = ()  # the service's routes, from its own code (see each fake's docstring)

    def route_of(self, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route serving `path` (after the prefix) and its path parameters, or None (the service's 404)."""
        for r in self.routes:
            found = r.match(path)
            if found is not None:
                return r, found
        return None

    def contract_problems(self) -> list[str]:
        """Every recorded request checked against the route table: no route, unknown or missing parameters."""
        out = []
        for req in self.requests:
            hit = self.route_of(req.path)
            if hit is None:
                out.append(f"{req.path}: no such route")
                continue
            out += [f"{req.path}: {p}" for p in hit[0].problems(req.query)]
        return out

    def error_payload(self, message: str, path: str, query: dict[str, str]) -> Any:
        """An error in the API's own shape (OONI's API answers `{"error": ...}`)."""
        return {"error": message, "v": 0}

    def paths(self, prefix: str = "") -> list[str]:
        return [r.path for r in self.requests if r.path.startswith(prefix)]


def _ts(dt: datetime) -> int:
    return int(dt.timestamp())


def _utc(text: str) -> datetime:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


# --- IODA ------------------------------------------------------------------------------------

IODA_STEPS = {"bgp": 300, "ping-slash24": 600, "merit-nt": 300, "gtr": 1800}


IODA_CONTROLLERS = "InetIntel/ioda-api src/Controller/"
OUTAGES_PARAMS = "datasource limit page relatedTo entityType entityCode ignoreMethods extendWindow"


class IodaFake(FakeAPI):
    """IODA v2 as InetIntel/ioda-api's controllers route it (`routes` below; src/Controller/SignalsController.php,
    EntitiesController.php, OutagesController.php): `/signals/raw/{entityType}/{entityCode}`,
    `/entities/query`, `/outages/alerts` and `/outages/events` with the entity in query parameters
    (entityType, entityCode, relatedTo), `limit` (default 500) and `page` (from 0, needs `limit`).
    Alerts are served as src/Entity/OutagesAlertNormalizer.php writes them, events in the default
    `codf` format of src/Entity/OutagesEventNormalizer.php. Errors are IODA's envelope with `error`
    set and HTTP 400 (a missing `from`/`until`, a bad limit/page/format); a path no controller
    routes, such as `/outages/alerts/country/KZ`, is a 404."""

    prefix = "/v2"
    routes = (
        route(
            "/signals/raw/{entityType}/{entityCode}",
            "datasource maxPoints noinflux sourceParams",
            "from until",
            IODA_CONTROLLERS + "SignalsController.php",
        ),
        route(
            "/entities/query",
            "entityType entityCode relatedTo search limit page",
            "",
            IODA_CONTROLLERS + "EntitiesController.php",
        ),
        route("/outages/alerts", OUTAGES_PARAMS, "from until", IODA_CONTROLLERS + "OutagesController.php"),
        route(
            "/outages/events",
            OUTAGES_PARAMS + " includeAlerts format orderBy overall",
            "from until",
            IODA_CONTROLLERS + "OutagesController.php",
        ),
        route(
            "/outages/summary", OUTAGES_PARAMS + " orderBy", "from until", IODA_CONTROLLERS + "OutagesController.php"
        ),
    )

    def __init__(self, latency: float = 0.0) -> None:
        super().__init__(latency)
        self.drops: list[tuple[str, datetime, datetime, float]] = []  # (code or "*", start, end, factor)
        self.nulls: set[tuple[str, str, int]] = set()  # (code, datasource, unix time) with no data
        self.missing: set[str] = set()  # entity codes IODA knows nothing about (no series)
        self.alerts: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.max_range = 100 * 86400
        self.noise = 0.0  # relative spread of the values around each entity's level (deterministic per time)
        self.published_only = False  # serve a bin only once it is complete (`now` past its end), as IODA does
        self.publish_delay = 0.0  # with published_only: up to this many seconds more per bin (its own, fixed)
        self.first_served: dict[tuple[str, str, int], float] = {}  # (code, datasource, t) of drops -> when served
        # /entities/query regions per country: numeric codes, Natural Earth admin-1 style names (as IODA has them)
        self.regions: dict[str, list[dict[str, Any]]] = {
            "KZ": [
                {
                    "code": str(4100 + i),
                    "name": name,
                    "type": "region",
                    "attrs": {"country_code": "KZ", "fqid": f"geo.netacuity.AS.KZ.{4100 + i}"},
                }
                for i, name in enumerate(
                    [
                        "Almaty",
                        "Almaty City",
                        "Aqmola",
                        "Astana",
                        "East Kazakhstan",
                        "Qaraghandy",
                        "South Kazakhstan",
                        "Mangghystaū",
                        "Pavlodar",
                        "Zhambyl",
                    ]
                )
            ]
        }

    def drop(self, code: str, start: datetime, end: datetime, factor: float) -> None:
        self.drops.append((code, start, end, factor))

    def value(self, etype: str, code: str, ds: str, t: int) -> float | None:
        if (code, ds, t) in self.nulls:
            return None
        v = _level(etype, code, ds)
        if self.noise:
            v *= 1 + self.noise * (_level(code, ds, t, lo=0.0, hi=1000.0) / 1000.0 - 0.5)
        when = datetime.fromtimestamp(t, tz=timezone.utc)
        for c, s, e, f in self.drops:
            if c in ("*", code) and s <= when < e:
                v *= f
                self.first_served.setdefault((code, ds, t), time.time())
        return float(round(v))

    def published_at(self, t: int, ds: str, code: str = "") -> float:
        """When an entity's bin starting at `t` appears (published_only): its end, plus its own share of
        publish_delay."""
        share = _level("publish", code, ds, t, lo=0.0, hi=1000.0) / 1000
        return t + IODA_STEPS.get(ds, 300) + self.publish_delay * share

    def _envelope(self, typ: str, query: dict[str, str], data: Any, error: str | None = None) -> dict[str, Any]:
        return {
            "type": typ,
            "metadata": {"requestTime": "2019-06-09T00:00:00+00:00", "responseTime": "2019-06-09T00:00:01+00:00"},
            "requestParameters": query,
            "error": error,
            "perf": None,
            "data": None if error else data,
            "copyright": "fake IODA for pollwatch tests",
        }

    def respond(self, path: str, query: dict[str, str], headers: Any, empty: bool) -> tuple[int, Any]:
        hit = self.route_of(path)
        if hit is None:
            return 404, self._envelope("error", query, None, f'No route found for "GET {self.prefix}{path}"')
        r, args = hit
        if r.pattern.startswith("/signals/raw/"):
            return self._signals(args["entityType"], args["entityCode"], query, empty)
        if r.pattern == "/entities/query":
            cc = query.get("relatedTo", "").partition("/")[2].upper()
            regions = self.regions.get(cc, []) if query.get("entityType") == "region" else []
            return 200, self._envelope("entities", query, [] if empty else regions)
        kind = r.pattern.rsplit("/", 1)[1]
        return self._outages(kind, query, empty)

    def _outages(self, kind: str, query: dict[str, str], empty: bool) -> tuple[int, Any]:
        """OutagesController::alerts / ::events: sanitizeInputs' checks, then the records of the entity, paged."""
        typ = f"outages.{kind}"
        frm, until = (_digits(query.get(k)) for k in ("from", "until"))
        limit, page = _digits(query.get("limit", "500")), query.get("page")
        problem = None
        if frm is None:
            problem = "'from' timestamp must be set"
        elif until is None:
            problem = "'until' timestamp must be set"
        elif query.get("datasource") and query["datasource"] not in IODA_STEPS:
            problem = f"invalid datasource {query['datasource']}"
        elif kind == "events" and query.get("format", "codf") not in ("codf", "ioda"):
            problem = f"invalid format {query['format']} (must be one of the following ['codf', 'ioda'])"
        elif not limit:
            problem = "limit must be greater than 0"
        elif page is not None and (_digits(page) is None):
            problem = "page must be greater than or equals to 0"
        if problem:
            return 400, self._envelope(typ, query, None, problem)
        rel_type, _, rel_code = query.get("relatedTo", "").partition("/")
        etype, codes = query.get("entityType"), query.get("entityCode")
        records = self.alerts if kind == "alerts" else self.events
        out = (
            []
            if empty
            else [
                {k: v for k, v in rec.items() if not k.startswith("_")}
                for rec in records
                if _rec_matches(rec, kind, etype, codes, rel_type, rel_code) and _rec_in(rec, kind, frm, until)
            ]
        )
        if page is not None:
            first = int(page) * int(limit)
            out = out[first : first + int(limit)]
        else:
            out = out[: int(limit)]
        return 200, self._envelope(typ, query, out)

    def error_payload(self, message: str, path: str, query: dict[str, str]) -> Any:
        return self._envelope("error", query, None, message)

    def huge_parts(self, path: str, query: dict[str, str]) -> tuple[bytes, bytes, bytes]:
        etype, code = (path.split("/") + ["", "", "", "", ""])[3:5]  # /signals/raw/{type}/{codes}
        env = json.dumps(
            self._envelope(
                "signals",
                query,
                [
                    [
                        {
                            "entityType": etype,
                            "entityCode": code,
                            "datasource": query.get("datasource", "bgp"),
                            "from": int(query.get("from", 0)),
                            "until": int(query.get("until", 0)),
                            "step": 300,
                            "nativeStep": 300,
                            "values": ["VALUES"],
                        }
                    ]
                ],
            )
        ).encode()
        head, tail = env.split(b'"VALUES"')
        return head, b"1523.0, ", b"1523.0" + tail

    def _signals(self, etype: str, codes: str, query: dict[str, str], empty: bool) -> tuple[int, Any]:
        try:
            frm, until = int(query["from"]), int(query["until"])
        except (KeyError, ValueError):
            return 400, self._envelope("signals", query, None, "Missing required request parameter 'from'")
        if until - frm >= self.max_range:
            return 400, self._envelope("signals", query, None, "time range must be under 100 days")
        datasources = [query["datasource"]] if query.get("datasource") else list(IODA_STEPS)
        data = []
        if not empty:
            for code in codes.split(","):
                if code in self.missing:
                    continue
                series = []
                for ds in datasources:
                    step = IODA_STEPS.get(ds, 300)
                    t0 = frm - frm % step
                    now, times = time.time(), []
                    for t in range(t0, until, step):
                        if self.published_only and self.published_at(t, ds, code) > now:
                            break  # this bin and those after it are not out yet
                        times.append(t)
                    values = [self.value(etype, code, ds, t) for t in times]
                    series.append(
                        {
                            "entityType": etype,
                            "entityCode": code,
                            "entityName": f"{etype} {code}",
                            "datasource": ds,
                            "subtype": "",
                            "from": t0,
                            "until": until,
                            "step": step,
                            "nativeStep": step,
                            "values": values,
                        }
                    )
                data.append(series)
        return 200, self._envelope("signals", query, data)


def _digits(text: str | None) -> int | None:
    """OutagesController::parseTimestampParameter: a non-negative integer, else None."""
    return int(text) if text is not None and text.isdigit() else None


def _rec_entity(rec: dict[str, Any], kind: str) -> tuple[str | None, str]:
    if kind == "alerts":
        ent = rec.get("entity", {})
        return ent.get("type"), str(ent.get("code"))
    rtype, _, rcode = str(rec.get("location", "")).partition("/")
    return rtype, rcode


def _rec_in(rec: dict[str, Any], kind: str, frm: int, until: int) -> bool:
    """Alerts generated in [from, until); events active then (the events route looks 14 days around: extendWindow)."""
    if kind == "alerts":
        return frm <= int(rec["time"]) < until
    return int(rec["start"]) < until and int(rec["start"]) + int(rec.get("duration") or 0) >= frm


def _rec_matches(
    rec: dict[str, Any], kind: str, etype: str | None, codes: str | None, rel_type: str, rel_code: str
) -> bool:
    """The entity filters: entityType, entityCode (comma separated), relatedTo=type/code (a region or
    network of a country: the fake's records carry their country in `entity.attrs.country_code`)."""
    rtype, rcode = _rec_entity(rec, kind)
    if etype and rtype != etype:
        return False
    if codes and rcode not in codes.split(","):
        return False
    if rel_type == "country" and rel_code:
        return str(rec.get("_country", "")).upper() == rel_code.upper()
    return True


def ioda_alert(
    etype: str,
    code: str,
    when: datetime,
    ds: str = "bgp",
    level: str = "critical",
    value: float = 10.0,
    history: float = 1000.0,
    country: str = "KZ",
) -> dict[str, Any]:
    """An /outages/alerts record as src/Entity/OutagesAlertNormalizer.php writes it
    (`_country`: the fake's relatedTo).
    """
    return {
        "_country": country,
        "datasource": ds,
        "entity": {"type": etype, "code": code, "name": f"{etype} {code}", "attrs": {}},
        "time": _ts(when),
        "level": level,
        "condition": "< 0.5",
        "value": value,
        "historyValue": history,
        "method": "median",
    }


def ioda_event(
    etype: str, code: str, start: datetime, end: datetime, ds: str = "bgp", score: float = 1234.5, country: str = "KZ"
) -> dict[str, Any]:
    """An /outages/events record in the codf format of
    src/Entity/OutagesEventNormalizer.php (`_country`: the fake's relatedTo).
    """
    return {
        "_country": country,
        "location": f"{etype}/{code}",
        "location_name": f"{etype} {code}",
        "start": _ts(start),
        "duration": _ts(end) - _ts(start),
        "uncertainty": None,
        "status": 0,
        "fraction": None,
        "score": score,
        "method": "median",
        "datasource": ds,
        "overlaps_window": False,
    }


# --- OONI ------------------------------------------------------------------------------------


OONI_AGGREGATION = "ooni/backend ooniapi/services/oonimeasurements/src/oonimeasurements/routers/v1/aggregation.py"


class OoniFake(FakeAPI):
    """OONI's aggregation API as ooni/backend's oonimeasurements service routes it (`routes`;
    oonimeasurements/routers/v1/aggregation.py), with axis_x=measurement_start_day at hour grain.

    Counts as the service computes them: `failure_count` counts measurements whose run failed
    (msm_failure), and `anomaly_count`/`confirmed_count`/`ok_count` count only the others; hours
    are "%Y-%m-%dT%H:%M:%SZ". Errors as the code raises them: a bad ASN in probe_asn is 400
    `{"detail": ...}` (HTTPException), a query parameter FastAPI cannot read (a date that is not
    a date, a domain under 3 characters) 422 `{"detail": [...]}`, a time range the time grain does
    not allow (hour: at most 7 days; since >= until) is an exception outside the handler's try:
    500 "Internal Server Error"; an unknown path 404 `{"detail": "Not Found"}`. Quota: the API's
    limiter (ooni/backend api/ooniapi/rate_limit_quotas.py) answers 429 with the text "429 error"
    (fault "429"; `retry_after` adds a Retry-After header, which the limiter does not send).

    Countries as the service filters them: `probe_cc` and `probe_asn` are lists (`probe_cc IN`, `probe_asn IN`)
    and rows are grouped by hour and `axis_y` only, so a network measured in several listed countries (`homes`)
    comes back as one row per hour, the sum of its countries' measurements. A network not in `homes` is measured
    in one country, whichever the request names (one row per hour, as before countries were modelled).
    `test_name` is a list too (`test_name IN`): the listed tests' rows are summed.

    Countries apart: `axis_x=probe_cc&axis_y=probe_asn` (either order) groups by both columns instead of by
    hour (`add_axis` for each; neither is `measurement_start_day`, so there is no time column and `time_grain`
    only bounds the dates: `auto`, the default, allows any range) and answers one row per (country, network)
    with measurements in [since, until), ordered by the axes: the counts and `probe_cc`, `probe_asn` (int), no
    `measurement_start_day`. Only networks in `homes` are answered per country (one not in it has no known
    country: it is left out, as a network with no measurements is)."""

    routes = (
        route(
            "/api/v1/aggregation",
            "input domain category_code probe_cc probe_asn test_name ooni_run_link_id since until "
            "time_grain axis_x axis_y format download",
            "",
            OONI_AGGREGATION,
        ),
    )

    def __init__(self, latency: float = 0.0) -> None:
        super().__init__(latency)
        self.silent: set[int] = set()  # ASNs with no measurements at all (blind spots)
        self.homes: dict[int, set[str]] = {}  # ASN -> the countries its probes are in (a network of several)
        # (test, domain, asn, start, end, share failing, country)
        self.blocks: list[tuple[str, str | None, int | None, datetime, datetime, float, str | None]] = []
        # (test, asn, start, end, share of runs failed, country)
        self.run_failures: list[tuple[str, int | None, datetime, datetime, float, str | None]] = []
        self.per_hour = 10  # measurements per (asn, test, domain, hour) unless silent

    def block(
        self,
        test: str,
        start: datetime,
        end: datetime,
        share: float = 1.0,
        asn: int | None = None,
        domain: str | None = None,
        cc: str | None = None,
    ) -> None:
        """Tests of `test` that see interference; `cc` limits it to one country's probes of the network."""
        self.blocks.append((test, domain, asn, start, end, share, cc))

    def failing_runs(
        self,
        test: str,
        start: datetime,
        end: datetime,
        share: float = 1.0,
        asn: int | None = None,
        cc: str | None = None,
    ) -> None:
        """Probes that could not complete the test (msm_failure): a probe bug or an OONI outage, not a block."""
        self.run_failures.append((test, asn, start, end, share, cc))

    def counts(self, test: str, domain: str | None, asn: int, hour: datetime, cc: str | None = None) -> dict[str, int]:
        """One country's measurements of a network in an hour (`cc` None: a network of one country)."""
        n = 0 if asn in self.silent else self.per_hour
        share = failed_share = 0.0
        for b_test, b_domain, b_asn, s, e, sh, b_cc in self.blocks:
            if (
                b_test == test
                and (b_domain is None or b_domain == domain)
                and (b_asn is None or b_asn == asn)
                and (b_cc is None or b_cc == cc)
                and s <= hour < e
            ):
                share = max(share, sh)
        for f_test, f_asn, s, e, sh, f_cc in self.run_failures:
            if f_test == test and (f_asn is None or f_asn == asn) and (f_cc is None or f_cc == cc) and s <= hour < e:
                failed_share = max(failed_share, sh)
        failure = round(n * failed_share) or (1 if n and not share and (asn + hour.hour) % 7 == 0 else 0)
        bad = round((n - failure) * share)  # anomaly and confirmed exclude failed runs (countIf ... msm_failure = 'f')
        confirmed = bad // 3
        anomaly = bad - confirmed
        return {
            "anomaly_count": anomaly,
            "confirmed_count": confirmed,
            "failure_count": failure,
            "ok_count": n - anomaly - confirmed - failure,
            "measurement_count": n,
        }

    def respond(self, path: str, query: dict[str, str], headers: Any, empty: bool) -> tuple[int, Any]:
        if self.route_of(path) is None:
            return 404, {"detail": "Not Found"}
        try:
            since, until = date.fromisoformat(query["since"]), date.fromisoformat(query["until"])
        except KeyError:
            return 400, {"detail": "the fake needs since and until (the service defaults them to six months)"}
        except ValueError:
            return 422, {
                "detail": [
                    {
                        "type": "date_from_datetime_parsing",
                        "loc": ["query", "since"],
                        "msg": "Input should be a valid date",
                    }
                ]
            }
        if query.get("domain") is not None and len(query["domain"]) < 3:
            return 422, {
                "detail": [
                    {
                        "type": "string_too_short",
                        "loc": ["query", "domain"],
                        "msg": "String should have at least 3 characters",
                    }
                ]
            }
        grain = query.get("time_grain", "auto")
        if until <= since or (grain == "hour" and until - since > timedelta(days=7)):
            # _resolve_time_grain raises in where_by_date, outside the handler's try
            return 500, "Internal Server Error"
        try:
            asns = [int(a[2:]) if a.startswith("AS") else int(a) for a in query.get("probe_asn", "").split(",") if a]
        except ValueError:
            return 400, {"detail": "Invalid ASN value in parameter probe_asn"}
        tests = query["test_name"].split(",") if query.get("test_name") else [""]  # test_name IN (...)
        domains = query["domain"].split(",") if query.get("domain") else [None]
        listed = set(query["probe_cc"].split(",")) if query.get("probe_cc") else None  # probe_cc IN (...)
        axes = (query.get("axis_x"), query.get("axis_y"))
        if set(axes) == {"probe_cc", "probe_asn"}:
            rows = [] if empty else self._per_country(tests, domains, asns, listed, since, until)
            rows.sort(key=lambda r: tuple(r[k] for k in axes))  # GROUP BY axis_x, axis_y ORDER BY each
            return 200, self._answer(rows)
        rows = []
        if not empty:
            t = datetime(since.year, since.month, since.day, tzinfo=timezone.utc)
            stop = datetime(until.year, until.month, until.day, tzinfo=timezone.utc)
            while t < stop:
                for a in asns:
                    total = {
                        "anomaly_count": 0,
                        "confirmed_count": 0,
                        "failure_count": 0,
                        "ok_count": 0,
                        "measurement_count": 0,
                    }
                    homes = self.homes.get(a)
                    ccs = [None] if homes is None else sorted(c for c in homes if listed is None or c in listed)
                    for cc in ccs:  # grouped by hour and probe_asn only: the listed countries' rows summed
                        for test in tests:
                            for d in domains:
                                for k, v in self.counts(test, d, a, t, cc).items():
                                    total[k] += v
                    if total["measurement_count"]:
                        rows.append(
                            {**total, "measurement_start_day": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "probe_asn": a}
                        )
                t += timedelta(hours=1)
        return 200, self._answer(rows)

    @staticmethod
    def _answer(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "v": 0,
            "dimension_count": 2,
            "db_stats": {"row_count": len(rows), "bytes": 0, "total_row_count": 0, "elapsed_seconds": 0.01},
            "result": rows,
        }

    def _per_country(
        self,
        tests: list[str],
        domains: list[str | None],
        asns: list[int],
        listed: set[str] | None,
        since: date,
        until: date,
    ) -> list[dict[str, Any]]:
        """Rows grouped by (probe_cc, probe_asn) over [since, until): each listed country's measurements of each
        listed network in `homes`, summed over the hours, tests and domains."""
        rows = []
        for a in asns:
            for cc in sorted(c for c in self.homes.get(a, ()) if listed is None or c in listed):
                total = dict.fromkeys(("anomaly_count", "confirmed_count", "failure_count", "ok_count"), 0)
                total["measurement_count"] = 0
                t = datetime(since.year, since.month, since.day, tzinfo=timezone.utc)
                while t.date() < until:
                    for test in tests:
                        for d in domains:
                            for k, v in self.counts(test, d, a, t, cc).items():
                                total[k] += v
                    t += timedelta(hours=1)
                if total["measurement_count"]:
                    rows.append({**total, "probe_cc": cc, "probe_asn": a})
        return rows


# --- RIPEstat --------------------------------------------------------------------------------


RIPESTAT_DOCS = "stat.ripe.net/docs/data_api (RIPEstat's server code is not public)"


class RipestatFake(FakeAPI):
    """RIPEstat's Data API as its documentation declares the two data calls (`routes`; stat.ripe.net/docs/data_api:
    RIPE NCC publishes no server code): /data/country-resource-list/data.json and
    /data/country-resource-stats/data.json, each with
    `sourceapp` (RIPEstat asks every client to name itself), in RIPEstat's envelope."""

    routes = (
        route("/data/country-resource-list/data.json", "time v4_format sourceapp", "resource", RIPESTAT_DOCS),
        route(
            "/data/country-resource-stats/data.json",
            "starttime endtime resolution sourceapp",
            "resource",
            RIPESTAT_DOCS,
        ),
    )

    def __init__(self, latency: float = 0.0) -> None:
        super().__init__(latency)
        self.resources: dict[str, dict[str, list[str]]] = {}
        self.visibility = 1000  # routed IPv4 prefixes
        self.routed_asns = 120
        self.drops: list[tuple[datetime, datetime, float]] = []

    def _envelope(self, call: str, data: Any, status: str = "ok") -> dict[str, Any]:
        return {
            "messages": [],
            "see_also": [],
            "version": "1.0",
            "data_call_name": call,
            "data_call_status": "supported",
            "cached": False,
            "data": data,
            "query_id": "fake",
            "process_time": 1,
            "server_id": "fake",
            "build_version": "fake",
            "status": status,
            "status_code": 200,
            "time": "2019-06-09T00:00:00.000000",
        }

    def error_payload(self, message: str, path: str, query: dict[str, str]) -> Any:
        return {
            **self._envelope(path.split("/")[2] if path.count("/") > 2 else "unknown", {}, status="error"),
            "messages": [["error", message]],
        }

    def respond(self, path: str, query: dict[str, str], headers: Any, empty: bool) -> tuple[int, Any]:
        cc = query.get("resource", "").upper()
        if path == "/data/country-resource-list/data.json":
            res = (
                {"asn": [], "ipv4": [], "ipv6": []}
                if empty
                else self.resources.get(cc, {"asn": [], "ipv4": [], "ipv6": []})
            )
            return 200, self._envelope(
                "country-resource-list",
                {"resources": res, "query_time": "2019-06-09T00:00:00.000000", "resource": cc.lower()},
            )
        if path == "/data/country-resource-stats/data.json":
            step = {"5m": 300, "1h": 3600, "1d": 86400, "1w": 604800}.get(query.get("resolution", "5m"), 300)
            start, end = _utc(query["starttime"]), _utc(query["endtime"])
            stats = []
            t = datetime.fromtimestamp(_ts(start) - _ts(start) % step, tz=timezone.utc)
            while not empty and t < end:
                factor = min([f for s, e, f in self.drops if s <= t < e], default=1.0)
                stats.append(
                    {
                        "timeline": [
                            {
                                "starttime": t.strftime("%Y-%m-%dT%H:%M:%S"),
                                "endtime": (t + timedelta(seconds=step)).strftime("%Y-%m-%dT%H:%M:%S"),
                            }
                        ],
                        "v4_prefixes_ris": int(self.visibility * factor),
                        "v6_prefixes_ris": 10,
                        "asns_ris": int(self.routed_asns * factor),
                        "v4_prefixes_stats": 1200,
                        "v6_prefixes_stats": 12,
                        "asns_stats": 150,
                        "stats_date": t.strftime("%Y-%m-%dT%H:%M:%S"),
                    }
                )
                t += timedelta(seconds=step)
            return 200, self._envelope(
                "country-resource-stats",
                {
                    "stats": stats,
                    "resource": cc.lower(),
                    "resolution": query.get("resolution"),
                    "query_starttime": query["starttime"],
                    "query_endtime": query["endtime"],
                },
            )
        return 404, self._envelope("unknown", {}, status="error")


# --- Cloudflare Radar ------------------------------------------------------------------------


RADAR_SCHEMA = "cloudflare/api-schemas openapi.json"
RADAR_COMMON = "limit offset dateRange dateStart dateEnd asn location format"


class RadarFake(FakeAPI):
    """Cloudflare Radar's outage annotations and traffic anomalies as cloudflare/api-schemas openapi.json declares
    them (operations radar-get-annotations-outages and radar-get-traffic-anomalies; `routes`): a Bearer token
    (403 and Cloudflare's error envelope without it), `limit`/`offset` paging, `dateStart`/`dateEnd` selecting
    records active in the range, results in `{success, errors, messages, result}`; other paths 404 with
    code 7000. `annotations` may be added while a test runs: a late annotation with an earlier start."""

    prefix = "/client/v4"
    routes = (
        route(
            "/radar/annotations/outages",
            RADAR_COMMON + " dataSource outageType outageCause tags query geoId origin tld ca log bot",
            "",
            RADAR_SCHEMA + " radar-get-annotations-outages",
        ),
        route(
            "/radar/traffic_anomalies", RADAR_COMMON + " status type", "", RADAR_SCHEMA + " radar-get-traffic-anomalies"
        ),
    )

    def __init__(self, token: str = "radar-test-token", latency: float = 0.0) -> None:
        super().__init__(latency)
        self.token = token
        self.annotations: list[dict[str, Any]] = []
        self.anomalies: list[dict[str, Any]] = []

    def error_payload(self, message: str, path: str, query: dict[str, str]) -> Any:
        return {"success": False, "errors": [{"code": 10000, "message": message}], "messages": [], "result": None}

    def respond(self, path: str, query: dict[str, str], headers: Any, empty: bool) -> tuple[int, Any]:
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 403, {
                "success": False,
                "errors": [{"code": 10000, "message": "Authentication error"}],
                "messages": [],
                "result": None,
            }
        if self.route_of(path) is None:
            return 404, {
                "success": False,
                "errors": [{"code": 7000, "message": "No route for that URI"}],
                "messages": [],
                "result": None,
            }
        start, end = _utc(query["dateStart"]), _utc(query["dateEnd"])
        loc = query.get("location", "").upper()
        limit, offset = int(query.get("limit", "100")), int(query.get("offset", "0"))

        def keep(rec: dict[str, Any]) -> bool:
            s = _utc(rec["startDate"])
            e = _utc(rec["endDate"]) if rec.get("endDate") else None
            return s < end and (e is None or e >= start)

        if path == "/radar/annotations/outages":
            out = (
                [] if empty else [a for a in self.annotations if keep(a) and (not loc or loc in a.get("locations", []))]
            )
            return 200, {
                "success": True,
                "errors": [],
                "messages": [],
                "result": {"annotations": out[offset : offset + limit]},
            }
        out = [] if empty else [a for a in self.anomalies if keep(a)]
        return 200, {
            "success": True,
            "errors": [],
            "messages": [],
            "result": {"trafficAnomalies": out[offset : offset + limit]},
        }


def radar_annotation(
    cc: str,
    start: datetime,
    end: datetime | None,
    cause: str = "GOVERNMENT_DIRECTED",
    typ: str = "NATIONWIDE",
    asns: list[int] | None = None,
    id: str | None = None,
) -> dict[str, Any]:
    """An outage annotation in Radar's shape."""
    return {
        "id": id or hashlib.sha1(f"{cc}{start}".encode()).hexdigest()[:8],
        "dataSource": "ALL",
        "description": "Internet shutdown",
        "eventType": "OUTAGE",
        "scope": None,
        "startDate": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endDate": end.strftime("%Y-%m-%dT%H:%M:%SZ") if end else None,
        "linkedUrl": "https://example.org/report",
        "locations": [cc],
        "locationsDetails": [{"code": cc, "name": cc}],
        "asns": asns or [],
        "asnsDetails": [{"asn": str(a), "name": f"AS{a}"} for a in asns or []],
        "outage": {"outageCause": cause, "outageType": typ},
    }


def radar_anomaly(
    cc: str, start: datetime, end: datetime | None, asn: int | None = None, status: str = "VERIFIED"
) -> dict[str, Any]:
    """A traffic anomaly in Radar's shape."""
    rec: dict[str, Any] = {
        "uuid": hashlib.sha1(f"{cc}{start}{asn}".encode()).hexdigest()[:12],
        "status": status,
        "type": "AS" if asn else "LOCATION",
        "startDate": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endDate": end.strftime("%Y-%m-%dT%H:%M:%SZ") if end else None,
        "visibleInDataSources": ["HTTP"],
    }
    if asn:
        rec["asnDetails"] = {"asn": str(asn), "name": f"AS{asn}", "location": {"code": cc, "name": cc}}
    else:
        rec["locationDetails"] = {"code": cc, "name": cc}
    return rec


@dataclass
class Observatories:
    """All four fakes, started together (see `observatories()`)."""

    ioda: IodaFake
    ooni: OoniFake
    ripestat: RipestatFake
    radar: RadarFake
    all: list[FakeAPI] = field(default_factory=list)

    def base_urls(self) -> dict[str, str]:
        return {"ioda": self.ioda.url, "ooni": self.ooni.url, "ripestat": self.ripestat.url, "radar": self.radar.url}


class observatories:  # noqa: N801 - used as a context manager like a function
    """`with observatories(latency=0.05) as obs:` starts the four fakes and stops them on exit."""

    def __init__(self, latency: float = 0.0, radar_token: str = "radar-test-token") -> None:
        self.obs = Observatories(
            IodaFake(latency), OoniFake(latency), RipestatFake(latency), RadarFake(radar_token, latency)
        )
        self.obs.all = [self.obs.ioda, self.obs.ooni, self.obs.ripestat, self.obs.radar]

    def __enter__(self) -> Observatories:
        for f in self.obs.all:
            f.start()
        return self.obs

    def __exit__(self, *exc: Any) -> None:
        for f in self.obs.all:
            f.stop()


class Sleeps:
    """A stand-in for asyncio.sleep that records backoff delays instead of waiting (fast tests)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def fast_config(url: str, **kw: Any) -> Any:
    """A SourceConfig pointing at a fake: short timeout, one retry, no rate limit."""
    from pollwatch.playbook import SourceConfig

    kw.setdefault("timeout", timedelta(seconds=0.5))
    kw.setdefault("retries", 1)
    kw.setdefault("backoff", 0.01)
    kw.setdefault("rate_limit", 0)
    return SourceConfig(base_url=url, **kw)
