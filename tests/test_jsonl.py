"""Observation JSON Lines: round trip, clear errors, idempotent import."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pollwatch import store
from pollwatch.cli import app
from pollwatch.jsonl import FormatError, read_observations, write_observations
from pollwatch.models import Observation, Provenance

T0 = datetime(2019, 6, 9, 5, 0, tzinfo=timezone.utc)


def _sample() -> list[Observation]:
    return [
        Observation(time=T0, source="ioda", signal="bgp", country="KZ", value=1523.0),
        Observation(time=T0, source="ioda", signal="bgp", country="KZ", region="KZ-ALA", value=None),
        Observation(
            time=T0 + timedelta(hours=1),
            source="ooni",
            signal="service_failure_rate",
            country="KZ",
            asn=9198,
            service="whatsapp",
            value=0.25,
            count=8,
            provenance=Provenance(
                request="https://api.ooni.io/api/v1/aggregation?probe_cc=KZ", fetched_at=T0, payload_hash="ab" * 32
            ),
        ),
    ]


def test_round_trip_keeps_every_field(tmp_path: Path):
    f = tmp_path / "obs.jsonl"
    write_observations(_sample(), f)
    first = json.loads(f.read_text().splitlines()[0])
    assert first == {
        "time": "2019-06-09T05:00:00Z",
        "source": "ioda",
        "signal": "bgp",
        "country": "KZ",
        "region": None,
        "asn": None,
        "service": None,
        "value": 1523.0,
    }
    assert read_observations(f) == _sample()


@pytest.mark.parametrize(
    "line,message",
    [
        (
            '{"time": "2019-06-09T05:00:00", "source": "ioda", "signal": "bgp", "country": "KZ", "value": 1}',
            "no time zone",
        ),
        (
            '{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", "country": "KZ", "value": "many"}',
            "value",
        ),
        (
            '{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", "country": "KZ", "colour": 1}',
            "unknown field",
        ),
        (
            '{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", "country": "KZ", "value": NaN}',
            "finite",
        ),
        ('{"time": "2019-06-09T05:00:00Z", "source": "ioda"', "not valid JSON"),
        # strict types: no coercion of booleans, numbers or unknown countries
        (
            '{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", "country": "KZ", "asn": true}',
            "field 'asn': expected an integer",
        ),
        (
            '{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", "country": "KZ", "value": true}',
            "field 'value': expected a number",
        ),
        (
            '{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", "country": "KZ", "count": 2.0}',
            "field 'count': expected an integer",
        ),
        (
            '{"time": 1560056400, "source": "ioda", "signal": "bgp", "country": "KZ", "value": 1}',
            "field 'time': expected an ISO 8601",
        ),
        ('{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", "country": "ZZZ"}', "ISO 3166-1 alpha-2"),
        (
            '{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", "country": 7}',
            "field 'country': expected a string",
        ),
        # what the store cannot keep, or should not have to
        (
            '{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", '
            '"country": "KZ", "region": "A\\u0000B"}',
            "NUL",
        ),
        (
            '{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", '
            '"country": "KZ", "service": "\\ud800"}',
            "lone surrogate",
        ),
        (
            '{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", "country": "KZ", "region": "'
            + "R" * 101
            + '"}',
            "at most 100",
        ),
        (
            '{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "' + "s" * 65 + '", "country": "KZ"}',
            "at most 64",
        ),
        (
            '{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", "country": "KZ", "service": "'
            + "x" * 20_000
            + '"}',
            "longer than",
        ),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, line: str, message: str):
    f = tmp_path / "bad.jsonl"
    good = '{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", "country": "KZ", "value": 1}'
    f.write_text(good + "\n" + line + "\n")
    with pytest.raises(FormatError) as err:
        read_observations(f)
    assert str(err.value).startswith(f"{f}:2:")
    assert message in str(err.value)


def test_import_twice_stores_each_observation_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    f = tmp_path / "obs.jsonl"
    write_observations(_sample(), f)
    runner = CliRunner()
    first = runner.invoke(app, ["observations", "import", str(f)])
    assert first.exit_code == 0, first.output
    assert "3 new" in first.output
    second = runner.invoke(app, ["observations", "import", str(f)])
    assert "0 new, 3 already stored" in second.output
    with store.session_scope() as s:
        assert store.count_observations(s) == 3
    out = tmp_path / "export.jsonl"
    exported = runner.invoke(app, ["observations", "export", "--out", str(out), "--country", "kz"])
    assert exported.exit_code == 0
    assert sorted(read_observations(out), key=lambda o: o.series_key) == sorted(_sample(), key=lambda o: o.series_key)
    # '--out -' is standard output (it wrote a file named '-'), the count on standard error
    monkeypatch.chdir(tmp_path)
    piped = runner.invoke(app, ["observations", "export", "--out", "-", "--country", "kz"], catch_exceptions=False)
    assert piped.exit_code == 0 and piped.stdout == out.read_text() and "3 observations written" in piped.stderr
    assert not Path("-").exists()


def test_bad_import_loses_nothing_already_recorded(tmp_path: Path):
    good = tmp_path / "good.jsonl"
    write_observations(_sample(), good)
    runner = CliRunner()
    runner.invoke(app, ["observations", "import", str(good)])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text() + "{not json}\n")
    result = runner.invoke(app, ["observations", "import", str(bad)])
    assert result.exit_code == 2
    assert "bad.jsonl:4: not valid JSON" in result.output
    with store.session_scope() as s:
        assert store.count_observations(s) == 3


def test_early_years_survive_the_round_trip(tmp_path: Path):
    early = Observation(
        time=datetime(999, 1, 2, 3, 4, 5, tzinfo=timezone.utc), source="ioda", signal="bgp", country="KZ", value=1.0
    )
    f = tmp_path / "early.jsonl"
    write_observations([early], f)
    assert json.loads(f.read_text())["time"] == "0999-01-02T03:04:05Z"
    assert read_observations(f) == [early]


def test_invalid_utf8_names_the_line(tmp_path: Path):
    f = tmp_path / "latin1.jsonl"
    good = b'{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", "country": "KZ", "value": 1}\n'
    f.write_bytes(good + good.replace(b'"ioda"', b'"io\xe9da"'))
    with pytest.raises(FormatError, match=rf"^{re.escape(str(f))}:2: not UTF-8 \(byte 0xe9"):
        read_observations(f)


def test_a_100_mb_line_is_refused_without_reading_it_all(tmp_path: Path):
    """A region string of 100 MB (it became a 300 MB SQLite file) stops at the line limit."""
    import tracemalloc

    f = tmp_path / "huge.jsonl"
    with open(f, "wb") as fh:
        fh.write(b'{"time": "2019-06-09T05:00:00Z", "source": "ioda", "signal": "bgp", "country": "KZ", "region": "')
        chunk = b"R" * (1 << 20)
        for _ in range(100):
            fh.write(chunk)
        fh.write(b'"}\n')
    tracemalloc.start()
    with pytest.raises(FormatError, match=":1: line longer than"):
        read_observations(f)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5_000_000
