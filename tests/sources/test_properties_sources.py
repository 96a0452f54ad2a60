"""Every source's parser, and every source's collect, on arbitrary and mutated responses.

A parser returns its rows or raises ShapeError; a source's collect (httpx.MockTransport serving
the generated body) never raises and yields only valid observations, plus gaps and notices for
what it could not read. Examples are capped so the module stays fast.
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("pollwatch.sources")
from pollwatch.sources import ShapeError, make_source  # noqa: E402
from pollwatch.sources.ioda_api import parse_signals  # noqa: E402
from pollwatch.sources.ooni import parse_aggregation  # noqa: E402
from pollwatch.sources.ooni_homes import parse_homes  # noqa: E402
from pollwatch.sources.ripestat import parse_resource_list, parse_resource_stats  # noqa: E402
from pollwatch.sources.radar import _result as radar_result  # noqa: E402
from tests.fakes.mutations import parent_of, paths  # noqa: E402

FAST = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
T0 = datetime(2019, 6, 9, 3, 0, tzinfo=timezone.utc)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    st.sampled_from(["2019-06-09T03:00:00Z", "AS9198", "9198", "KZ", "", "null", "1e999"]),
)
json_values = st.recursive(
    scalars,
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=8), c, max_size=4)),
    max_leaves=15,
)


def _ioda_series(code: str = "KZ", ds: str = "bgp") -> dict[str, Any]:
    return {
        "entityType": "country",
        "entityCode": code,
        "datasource": ds,
        "from": int(T0.timestamp()),
        "until": int(T0.timestamp()) + 1800,
        "step": 300,
        "nativeStep": 300,
        "values": [1000.0, None, 990.0, 1010.0, 1000.0, 1000.0],
    }


VALID = {
    "ioda": {
        "type": "signals",
        "metadata": {},
        "requestParameters": {},
        "error": None,
        "perf": None,
        "data": [[_ioda_series()]],
        "copyright": "x",
    },
    "ooni": {
        "result": [
            {
                "anomaly_count": 1,
                "confirmed_count": 0,
                "failure_count": 0,
                "ok_count": 9,
                "measurement_count": 10,
                "measurement_start_day": "2019-06-09T03:00:00Z",
                "probe_asn": 9198,
            }
        ]
    },
    "ripestat": {
        "status": "ok",
        "data": {
            "resources": {"asn": ["9198", "AS35168"], "ipv4": ["2.72.0.0/13"], "ipv6": []},
            "query_time": "2019-06-09T00:00:00",
            "stats": [{"timeline": [], "v4_prefixes_ris": 3}],
        },
    },
    "radar": {"success": True, "errors": [], "result": {"annotations": [], "trafficAnomalies": []}},
}


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    doc = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        candidates = [p for p in paths(doc) if p]
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent = parent_of(doc, path)
        if isinstance(parent, dict) and draw(st.booleans()):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(json_values)
    return doc


PARSERS = {
    "ioda": parse_signals,
    "ooni": parse_aggregation,
    "ripestat": lambda p: (parse_resource_list(p, "KZ"), parse_resource_stats(p)),
    "radar": lambda p: (radar_result(p, "annotations"), radar_result(p, "trafficAnomalies")),
}


def _parse_or_shape_error(name: str, payload: Any) -> None:
    try:
        PARSERS[name](payload)
    except ShapeError:
        pass


def test_ripestat_resource_lists_of_the_wrong_type_are_a_shape_error():
    for bad in (5, True, "AS9198", {"a": 1}):
        with pytest.raises(ShapeError):
            parse_resource_list({"status": "ok", "data": {"resources": {"asn": bad}}}, "KZ")


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_parsers_read_their_valid_payload(name):
    PARSERS[name](VALID[name])


@pytest.mark.parametrize("name", sorted(PARSERS))
@FAST
@given(payload=json_values)
def test_parsers_on_arbitrary_json(name, payload):
    _parse_or_shape_error(name, payload)


@pytest.mark.parametrize("name", sorted(PARSERS))
@FAST
@given(data=st.data())
def test_parsers_on_mutated_valid_payloads(name, data):
    _parse_or_shape_error(name, data.draw(mutated(VALID[name])))


HOMES = {  # OONI's answer with axis_x=probe_cc, axis_y=probe_asn (ooni_homes.py)
    "v": 0,
    "dimension_count": 2,
    "result": [
        {"anomaly_count": 0, "confirmed_count": 0, "failure_count": 0, "ok_count": 7, "measurement_count": 7}
        | {"probe_cc": cc, "probe_asn": 65003}
        for cc in ("TJ", "UZ")
    ],
}


@FAST
@given(data=st.data())
def test_ooni_discovery_answers_are_read_or_a_shape_error(data):
    assert parse_homes(HOMES) == {65003: {"TJ", "UZ"}}
    try:
        parse_homes(data.draw(st.one_of(json_values, mutated(HOMES))))
    except ShapeError:
        pass


# --- whole sources, through a mock transport -----------------------------------------------------


def _collect(name: str, watch, body: bytes, status: int = 200):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": "application/json"})

    from pollwatch.playbook import SourceConfig

    async def no_sleep(_: float) -> None:
        return None

    cfg = SourceConfig(base_url=f"http://{name}.test", timeout=timedelta(seconds=1), retries=0, rate_limit=0)
    kw = {"token": "t"} if name == "radar" else {}
    src = make_source(name, watch, config=cfg, transport=httpx.MockTransport(handler), sleep=no_sleep, **kw)
    return asyncio.run(src.collect(watch, T0 - timedelta(hours=1), T0))


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_sources_never_raise_and_yield_only_valid_observations(name, kz_watch, data):
    payload = data.draw(st.one_of(json_values, mutated(VALID[name])))
    body = data.draw(
        st.sampled_from([json.dumps(payload).encode(), json.dumps(payload).encode()[:7], b"\xff\xfe", b""])
    )
    res = _collect(name, kz_watch, body)
    for o in res.observations:
        assert o.time.tzinfo is not None and (o.value is None or math.isfinite(o.value))
    if not res.observations and not res.corroborations and res.gaps:
        assert res.notices, "gaps without a word to the operators"


@pytest.mark.parametrize(
    "name,payload",
    [
        ("ripestat", {"status": "ok", "data": {"resources": {"asn": 5, "ipv4": 7}, "stats": 3}}),
        ("ioda", {"data": [[{**_ioda_series(), "from": 10**30}]], "error": None}),
        ("ioda", {"data": [[{**_ioda_series(), "values": [1e308, -1e308, 0.0, None]}]], "error": None}),
        (
            "ooni",
            {"result": [{**VALID["ooni"]["result"][0], "measurement_count": -5, "probe_asn": "AS99999999999999"}]},
        ),
        (
            "radar",
            {
                "success": True,
                "result": {"annotations": [{"startDate": "99999-01-01", "asns": ["x"]}], "trafficAnomalies": [7]},
            },
        ),
    ],
)
def test_sources_survive_hostile_values(name, payload, kz_watch):
    res = _collect(name, kz_watch, json.dumps(payload).encode())
    for o in res.observations:
        assert o.time.tzinfo is not None and (o.value is None or math.isfinite(o.value))
        assert o.asn is None or 0 <= o.asn < 2**32
