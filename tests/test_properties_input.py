"""Bad input, property-based: every loader answers with a valid model or its own clear error.

The playbook loader gives a Playbook/Watch or a PlaybookError, the JSONL reader Observations or
a FormatError, never another exception, whatever text or structure it is handed. Examples are
capped so the whole module stays fast.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pollwatch.jsonl import FormatError, observation_to_dict, read_observations, write_observations
from pollwatch.models import Observation
from pollwatch.playbook import Playbook, PlaybookError, Watch, load_playbook
from tests.conftest import KZ_WATCH
from tests.fakes.mutations import parent_of, paths

FAST = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
WORKDIR = Path(tempfile.mkdtemp(prefix="pollwatch-props-"))
VALID_WATCH: dict[str, Any] = yaml.safe_load(KZ_WATCH.read_text(encoding="utf-8"))
TEMPLATE = KZ_WATCH.parent.parent / "rapid-response.yaml"
VALID_TEMPLATE: dict[str, Any] = yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))

# --- strategies ------------------------------------------------------------------------------

hostile_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "",
            "-",
            "5m",
            "-28d",
            "1e309",
            "999999999999d",
            "E+3d",
            "nan",
            "inf",
            "KZ",
            "XX",
            "Asia/Almaty",
            "Mars/Olympus",
            "2019-06-09",
            "9999-12-31",
            "0000-00-00",
            "24:61",
            "2019-06-10T09:00",
            "../../etc/passwd",
            "!!python/object:os.system",
            "\x00",
            "ü" * 10,
        ]
    ),
)
yaml_values = st.recursive(
    hostile_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """A valid document with one to three mutations: a value replaced, a key dropped or an unknown key added."""
    doc = json.loads(json.dumps(base, default=str))
    for _ in range(draw(st.integers(1, 3))):
        candidates = [p for p in paths(doc) if p]
        path = draw(st.sampled_from(candidates))
        parent = parent_of(doc, path)
        op = draw(st.sampled_from(["replace", "drop", "add"]))
        if op == "replace":
            parent[path[-1]] = draw(yaml_values)
        elif op == "drop" and isinstance(parent, dict):
            parent.pop(path[-1], None)
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(yaml_values)
    return doc


def _load_text(text: str, name: str = "watch.yaml") -> Playbook | Watch:
    path = WORKDIR / name
    path.write_text(text, encoding="utf-8")
    return load_playbook(path)


def _expect_model_or_playbook_error(text: str, name: str = "watch.yaml") -> None:
    try:
        pb = _load_text(text, name)
    except PlaybookError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        assert all(":" in p for p in exc.problems), exc.problems  # every problem says where
    else:
        assert isinstance(pb, (Playbook, Watch))


# --- the playbook loader ------------------------------------------------------------------------


@FAST
@given(st.text(max_size=300))
def test_playbook_loader_on_arbitrary_text(text: str) -> None:
    _expect_model_or_playbook_error(text)


@FAST
@given(yaml_values)
def test_playbook_loader_on_arbitrary_yaml_structures(value: Any) -> None:
    _expect_model_or_playbook_error(yaml.safe_dump(value, allow_unicode=True))


@settings(FAST, max_examples=25)
@given(mutated(VALID_WATCH))
def test_playbook_loader_on_mutated_watches(doc: dict[str, Any]) -> None:
    # written next to the real template so `template: rapid-response.yaml` resolves
    _expect_model_or_playbook_error(yaml.safe_dump(doc, allow_unicode=True), "mutated-watch.yaml")


@settings(FAST, max_examples=25)
@given(mutated(VALID_TEMPLATE))
def test_playbook_loader_on_mutated_templates(doc: dict[str, Any]) -> None:
    _expect_model_or_playbook_error(yaml.safe_dump(doc, allow_unicode=True), "mutated-template.yaml")


@pytest.mark.parametrize(
    "snippet",
    [
        "phases:\n  - {name: a, start: -1d, end: 999999999999d, cadence: 5m}\n",
        "phases:\n  - {name: a, start: -1d, end: 1e300, cadence: 5m}\n",
        "phases:\n  - {name: a, start: -1d, end: .nan, cadence: 5m}\n",
        "phases:\n  - {name: a, start: -1d, end: 3d, cadence: .inf}\n",
        "signals: {bgp: {source: ioda, window: 99999999999w}}\n",
        "providers:\n  - {asn: 99999999999999999999999, name: huge}\n",
        "election_date: 99999-01-01\n",
        "milestones:\n  - {name: m, at: '99:99'}\n",
        "timezone: ../../../../etc/passwd\n",
        "a: &a [*a]\n",
        "x: !!python/object/apply:os.system ['echo pwned']\n",
    ],
)
def test_playbook_loader_on_hostile_values(snippet: str) -> None:
    head = "template: rapid-response.yaml\nname: hostile\ncountry: KZ\nelection_date: 2019-06-09\n"
    text = (
        head + snippet
        if not snippet.startswith("election_date")
        else head.replace("election_date: 2019-06-09\n", "") + snippet
    )
    _expect_model_or_playbook_error(text, "hostile-watch.yaml")


def test_the_valid_watch_still_loads() -> None:
    assert isinstance(_load_text(yaml.safe_dump(VALID_WATCH), "valid-watch.yaml"), Watch)


# --- the JSONL reader ---------------------------------------------------------------------------

FIELDS = [
    "time",
    "source",
    "signal",
    "country",
    "region",
    "asn",
    "service",
    "value",
    "count",
    "request",
    "fetched_at",
    "payload_hash",
]
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
        st.sampled_from(
            [
                "2019-06-09T05:00:00Z",
                "2019-06-09T05:00:00",
                "9999-12-31T23:59:59Z",
                "0001-01-01T00:00:00+14:00",
                "2019-13-45T99:00:00Z",
                "KZ",
                "kz",
                "",
                "NaN",
            ]
        ),
    ),
    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=6), c, max_size=3)),
    max_leaves=6,
)
records = st.dictionaries(st.sampled_from(FIELDS + ["extra"]), json_values, max_size=10)
good_record = st.fixed_dictionaries(
    {
        "time": st.sampled_from(["2019-06-09T05:00:00Z", "2019-06-09T10:00:00+06:00"]),
        "source": st.sampled_from(["ioda", "ooni"]),
        "signal": st.sampled_from(["bgp", "active_probing"]),
        "country": st.just("KZ"),
    }
)


def _expect_observations_or_format_error(path: Path) -> None:
    try:
        out = read_observations(path)
    except FormatError as exc:
        assert str(path) in str(exc) and ":" in str(exc)
    else:
        assert all(isinstance(o, Observation) for o in out)
        for o in out:
            assert o.value is None or math.isfinite(o.value)
            assert o.time.tzinfo is not None
            # what is accepted fits the store (PostgreSQL refuses NUL and lone surrogates; columns have lengths)
            assert len(o.country) == 2 and o.country.isascii() and o.country.isalpha() and o.country.isupper()
            texts = [o.source, o.signal, o.region, o.service]
            assert all(t is None or ("\x00" not in t and len(t) <= 100) for t in texts)
            for t in texts:
                assert t is None or isinstance(t.encode("utf-8"), bytes)
            assert len(o.entity_key) <= 255


def _raw_types_ok(row: dict[str, Any]) -> bool:
    """Would a strict reader accept these JSON types (no booleans for numbers, no numbers for times)?"""
    for k, v in row.items():
        if v is None:
            continue
        if k in ("asn", "count") and (isinstance(v, bool) or not isinstance(v, int)):
            return False
        if k == "value" and (isinstance(v, bool) or not isinstance(v, (int, float))):
            return False
        if k in (
            "time",
            "source",
            "signal",
            "country",
            "region",
            "service",
            "request",
            "fetched_at",
            "payload_hash",
        ) and not isinstance(v, str):
            return False
    return True


@FAST
@given(st.lists(st.one_of(records, good_record), max_size=5))
def test_jsonl_reader_on_arbitrary_objects(rows: list[dict[str, Any]]) -> None:
    path = WORKDIR / "obs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    _expect_observations_or_format_error(path)
    try:
        read_observations(path)
    except FormatError:
        return
    assert all(_raw_types_ok(r) for r in rows), "a value of the wrong JSON type was coerced"


hostile_text = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(
        ["\x00", "a\x00b", "\ud800", "x\udfff", "\u202egnp.exe", "\x1b[2J", "R" * 101, "s" * 65, "ZZZ", "k", "K1"]
    ),
    st.integers(0, 3).map(lambda n: "é" * (10**n)),
)


@FAST
@given(st.sampled_from(["source", "signal", "country", "region", "service", "request", "payload_hash"]), hostile_text)
def test_jsonl_reader_on_hostile_strings(field: str, text: str) -> None:
    """NUL, lone surrogates, bidi overrides, escapes and long strings in any string field: an
    Observation that fits the store, or a FormatError naming file:line."""
    row = {
        "time": "2019-06-09T05:00:00Z",
        "source": "ioda",
        "signal": "bgp",
        "country": "KZ",
        "value": 1.0,
        field: text,
    }
    path = WORKDIR / "obs-strings.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")  # json.dumps writes lone surrogates as \\ud800 escapes
    _expect_observations_or_format_error(path)


@FAST
@given(st.lists(st.binary(max_size=60), max_size=4))
def test_jsonl_reader_on_arbitrary_bytes(lines: list[bytes]) -> None:
    """Bytes that are not UTF-8 (Latin-1 exports, truncated multi-byte characters): FormatError with file:line."""
    path = WORKDIR / "obs-bytes.jsonl"
    path.write_bytes(b"\n".join(lines))
    _expect_observations_or_format_error(path)


@FAST
@given(st.lists(st.text(max_size=80), max_size=5))
def test_jsonl_reader_on_arbitrary_lines(lines: list[str]) -> None:
    path = WORKDIR / "obs-text.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    _expect_observations_or_format_error(path)


@pytest.mark.parametrize(
    "line",
    [
        '{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", "country": "KZ", "value": NaN}',
        '{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", "country": "KZ", "value": Infinity}',
        '{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", "country": "KZ", "value": 1e999}',
        '{"time": "2019-06-09T05:00:00Z", "source": "ooni", "signal": "x", "country": "KZ", "value": 0.5, "count": -3}',
        '{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", '
        '"country": "KZ", "asn": 100000000000000000000000}',
        '{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", "country": "KZ", "asn": -1}',
        '{"time": "10000-01-01T00:00:00Z", "source": "ioda", "signal": "bgp", "country": "KZ"}',
        '{"time": 1e30, "source": "ioda", "signal": "bgp", "country": "KZ"}',
        "[" * 50_000,
        '{"a":' * 50_000,
        "\ufeff{}",
    ],
)
def test_jsonl_reader_on_hostile_lines(line: str) -> None:
    path = WORKDIR / "hostile.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    _expect_observations_or_format_error(path)


@FAST
@given(
    st.lists(
        st.builds(
            Observation,
            time=st.datetimes(
                min_value=__import__("datetime").datetime(1900, 1, 1),
                timezones=st.just(__import__("datetime").timezone.utc),
            ).map(lambda d: d.replace(microsecond=0)),
            source=st.sampled_from(["ioda", "ooni"]),
            signal=st.sampled_from(["bgp", "rtt_ms"]),
            country=st.just("KZ"),
            asn=st.one_of(st.none(), st.integers(1, 2**32 - 1)),
            value=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
            count=st.one_of(st.none(), st.integers(0, 10**6)),
            region=st.none(),
            service=st.none(),
            provenance=st.none(),
        ),
        max_size=5,
    )
)
def test_jsonl_round_trip(observations: list[Observation]) -> None:
    path = WORKDIR / "roundtrip.jsonl"
    write_observations(observations, path)
    back = read_observations(path)
    assert [observation_to_dict(o) for o in back] == [observation_to_dict(o) for o in observations]
