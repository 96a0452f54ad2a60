"""Import adapters on small files the tests write: each format's variants, its errors (FILE:LINE: field),
and `pollwatch observations import --format`."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pollwatch import store
from pollwatch.adapters import (
    read_ioda_outages,
    read_ioda_signals,
    read_keepiton,
    read_monash,
    read_ooni_raw,
    read_responsive,
)
from pollwatch.adapters.ioda import parse_curated_time
from pollwatch.adapters.monash import parse_offset
from pollwatch.cli import app
from pollwatch.jsonl import FormatError
from pollwatch.models import Cause, IncidentKind

UTC = timezone.utc
runner = CliRunner()


def write(path: Path, header: list[str], rows: list[list], gz: bool = False) -> Path:
    opener = (lambda: gzip.open(path, "wt", newline="")) if gz else (lambda: path.open("w", newline=""))
    with opener() as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


# --- Monash ----------------------------------------------------------------------------------


def test_monash_time_variants_agree_and_a_0_10_index_is_scaled(tmp_path: Path):
    t = datetime(2019, 11, 16, 8, 30, tzinfo=UTC)  # 12:00 in Tehran (UTC+03:30)
    local_e = int(datetime(2019, 11, 16, 12, 0, tzinfo=UTC).timestamp())
    a = read_monash(
        write(
            tmp_path / "local.csv",
            ["iso", "name_1", "name_2", "time_e", "connectivity"],
            [["IRN", "Tehran", "Rey", local_e, 90]],
        ),
        "Asia/Tehran",
    )
    b = read_monash(
        write(
            tmp_path / "utc.csv",
            ["iso", "name_1", "name_2", "time_e_utc", "connectivity"],
            [["IRN", "Tehran", "Rey", int(t.timestamp()), 9], ["IRN", "Tehran", "Rey", int(t.timestamp()) + 3600, 4]],
        )
    )
    c = read_monash(
        write(
            tmp_path / "off.csv",
            ["iso", "name_1", "time_local", "timezone_offset", "connectivity", "latency_index"],
            [["IRN", "Tehran", "2019-11-16 12:00:00", "+03:30", 9.0, 2.5]],
        ),
        scale="10",
    )
    assert a[0].time == b[0].time == c[0].time == t
    assert a[0].value == 90.0 and b[0].value == 90.0 and b[1].value == 40.0, "a 0..10 index reads as 0..100"
    assert {o.signal: o.value for o in c} == {"connectivity_index": 90.0, "latency_index": 25.0}
    assert read_monash(tmp_path / "utc.csv", scale="100")[0].value == 9.0
    assert parse_offset("-4") == -parse_offset("+04:00") and parse_offset("UTC+0330").total_seconds() == 12600


def test_monash_errors_name_the_line_and_field(tmp_path: Path):
    f = write(
        tmp_path / "bad.csv",
        ["iso", "name_1", "time_e", "connectivity"],
        [["IRN", "Tehran", 1573905600, 50], ["IRN", "Tehran", 1573909200, "lots"]],
    )
    with pytest.raises(FormatError, match=r"bad\.csv:3: connectivity: not a number: 'lots'"):
        read_monash(f, "Asia/Tehran")
    with pytest.raises(FormatError, match=r"bad\.csv:2: time_e is the local wall clock: give the time zone"):
        read_monash(f)
    g = write(tmp_path / "nocol.csv", ["iso", "name_1", "time_e_utc"], [["IRN", "Tehran", 1]])
    with pytest.raises(FormatError, match=r"nocol\.csv:1: no index column"):
        read_monash(g)


# --- responsive addresses --------------------------------------------------------------------


def test_responsive_addresses_pool_per_hour_with_explicit_zeros(tmp_path: Path, kz_watch):
    rows = [
        ["2019-06-09T05:10:00Z", "9198", "h1"],
        ["2019-06-09T05:20:00Z", "AS9198", "h1"],
        ["2019-06-09T05:50:00Z", "9198", "h2"],
        ["2019-06-09T05:05:00Z", "29355", "h9"],
        # 06:00 nobody answered on either network; 07:00 only Kcell
        ["2019-06-09T07:30:00Z", "29355", "h9"],
        ["2019-06-09T07:31:00Z", "29355", "h8"],
    ]
    obs = read_responsive(write(tmp_path / "r.csv.gz", ["time_utc", "asn", "ip_hash"], rows, gz=True), watch=kz_watch)
    got = {(o.time.hour, o.asn): o.value for o in obs}
    assert got == {(5, 9198): 2.0, (5, 29355): 1.0, (6, 9198): 0.0, (6, 29355): 0.0, (7, 9198): 0.0, (7, 29355): 2.0}
    assert {o.signal for o in obs} == {"responsive_addresses"} and all(o.country == "KZ" for o in obs)
    by_name = write(
        tmp_path / "isp.csv", ["epoch", "isp", "ip"], [[1560057000, "kcell", "a"], [1560057000, "Nowhere Telecom", "b"]]
    )
    with pytest.raises(FormatError, match=r"isp\.csv:3: isp: 'Nowhere Telecom' is not a provider of the watch"):
        read_responsive(by_name, watch=kz_watch)


# --- OONI raw --------------------------------------------------------------------------------


OONI_HEADER = [
    "measurement_uid",
    "probe_cc",
    "probe_asn",
    "probe_as_org_name",
    "test_name",
    "measurement_start_time",
    "failure_class",
]


def test_ooni_raw_counts_measurements_not_endpoints_and_failures_are_not_blocking(tmp_path: Path):
    rows = [
        # m1: one endpoint blocked at TCP -> an anomalous measurement
        ["m1", "KE", "AS12455", "Jambonet", "telegram", "2023-11-09 07:05:00", "ok"],
        ["m1", "KE", "AS12455", "Jambonet", "telegram", "2023-11-09 07:05:00", "tcp"],
        # m2: every endpoint fine
        ["m2", "KE", "AS12455", "Jambonet", "telegram", "2023-11-09 07:40:00", "ok"],
        ["m2", "KE", "AS12455", "Jambonet", "telegram", "2023-11-09 07:40:00", "ok"],
        # m3: the measurement failed (no endpoint result): not blocking, not counted
        ["m3", "KE", "AS12455", "Jambonet", "telegram", "2023-11-09 07:50:00", ""],
        # m4: another network, the next hour
        ["m4", "KE", "33771", "Safaricom", "telegram", "2023-11-09T08:01:00Z", "tls"],
    ]
    obs, names = read_ooni_raw(write(tmp_path / "ke.csv", OONI_HEADER, rows))
    got = {(o.time.hour, o.asn): (o.value, o.count) for o in obs}
    assert got == {(7, 12455): (0.5, 2), (7, None): (0.5, 2), (8, 33771): (1.0, 1), (8, None): (1.0, 1)}
    assert (
        {o.service for o in obs} == {"telegram"} and {o.country for o in obs} == {"KE"} and names[12455] == "Jambonet"
    )
    # OONI's own flags: anomaly/confirmed count as blocking, failure leaves the denominator
    flags = write(
        tmp_path / "flags.csv",
        ["measurement_uid", "probe_asn", "measurement_start_time", "anomaly", "confirmed", "failure"],
        [
            ["a", "1", "2023-11-09T07:00:00Z", "true", "false", "false"],
            ["b", "1", "2023-11-09T07:10:00Z", "false", "false", "false"],
            ["c", "1", "2023-11-09T07:20:00Z", "false", "false", "true"],
        ],
    )
    (o1, _) = read_ooni_raw(flags, "KE", "whatsapp")[0]
    assert (o1.value, o1.count) == (0.5, 2)
    with pytest.raises(FormatError, match=r"ke2\.csv:2: probe_asn: not an AS number"):
        read_ooni_raw(
            write(
                tmp_path / "ke2.csv", OONI_HEADER, [["x", "KE", "Safaricom", "", "telegram", "2023-11-09T07:00Z", "ok"]]
            )
        )


# --- IODA ------------------------------------------------------------------------------------


def test_ioda_signal_export_and_curated_times(tmp_path: Path):
    payload = {
        "type": "signals",
        "error": None,
        "data": [
            [
                {
                    "entityType": "country",
                    "entityCode": "KZ",
                    "datasource": "bgp",
                    "from": 1560056400,
                    "until": 1560057000,
                    "step": 300,
                    "values": [100, None],
                },
                {
                    "entityType": "asn",
                    "entityCode": "9198",
                    "datasource": "ping-slash24",
                    "from": 1560056400,
                    "until": 1560056700,
                    "step": 300,
                    "values": [7],
                },
                {
                    "entityType": "region",
                    "entityCode": "1234",
                    "datasource": "merit-nt",
                    "from": 1560056400,
                    "until": 1560056700,
                    "step": 300,
                    "values": [3],
                },
            ]
        ],
    }
    f = tmp_path / "ioda.json"
    f.write_text(json.dumps(payload))
    obs = read_ioda_signals(f, "kz", {"KZ-ALA": "1234"})
    got = {(o.signal, o.region, o.asn, o.time.minute): o.value for o in obs}
    assert got == {
        ("bgp", None, None, 0): 100.0,
        ("bgp", None, None, 5): None,
        ("active_probing", None, 9198, 0): 7.0,
        ("telescope", "KZ-ALA", None, 0): 3.0,
    }
    (tmp_path / "bad.json").write_text('{"data": [[{"entityType": "country"}]]}')
    with pytest.raises(FormatError, match=r"bad\.json: not an IODA signal export: series field"):
        read_ioda_signals(tmp_path / "bad.json", "KZ")
    assert parse_curated_time("Sunday, January 21, 2018, 12:00:00 AM") == datetime(2018, 1, 21, 0, 0, tzinfo=UTC)
    assert parse_curated_time("Thursday, May 31, 2018, 2:30: AM") == datetime(2018, 5, 31, 2, 30, tzinfo=UTC)
    assert parse_curated_time("Saturday June 2, 2018, 8:00 PM") == datetime(2018, 6, 2, 20, 0, tzinfo=UTC)
    assert parse_curated_time("2019-11-16T14:00:00") == datetime(2019, 11, 16, 14, 0, tzinfo=UTC)
    assert parse_curated_time("sometime") is None


def test_ioda_curated_list_with_raw_times_to_labels(tmp_path: Path):
    f = write(
        tmp_path / "outages.csv",
        ["id", "country", "scope_level", "scope_detail", "cause", "begin_raw", "end_raw"],
        [
            ["A", "Iraq", "Country", "", "Exams", "Sunday, June 9, 2019, 3:00:00 AM", "Sunday, June 9, 2019, 5:30: AM"],
            [
                "B",
                "Venezuela",
                "Region",
                "Zulia",
                "Power-Outage",
                "Monday, July 22, 2019, 8:50 PM",
                "Tuesday, July 23, 2019, 1:00 AM",
            ],
            # ends first
            ["C", "Syria", "Country", "", "Exams", "Monday, July 22, 2019, 8:50 PM", "Monday, July 22, 2019, 7:00 PM"],
        ],
    )
    got = read_ioda_outages(f)
    assert [(lb.id, lb.country, lb.kind, lb.cause) for lb in got.labels] == [
        ("ioda-A", "IQ", IncidentKind.nationwide_outage, Cause.government_directed),
        ("ioda-B", "VE", IncidentKind.regional_outage, Cause.power_outage),
    ]
    assert got.labels[0].end == datetime(2019, 6, 9, 5, 30, tzinfo=UTC) and got.labels[1].regions == ["Zulia"]
    assert got.skipped == 1 and "outages.csv:4: end" in got.reasons[0]
    assert [lb.id for lb in read_ioda_outages(f, "VE").labels] == ["ioda-B"]


def test_keepiton_rows_to_labels(tmp_path: Path):
    header = [
        "source_sheet",
        "country",
        "start_date",
        "end_date",
        "geo_scope",
        "area",
        "shutdown_extent",
        "facebook",
        "whatsapp",
        "telegram",
        "other_services",
    ]
    f = write(
        tmp_path / "kio.csv",
        header,
        [
            ["2019", "Iran", "2019-11-16", "2019-11-23", "National", "", "full network", "", "", "", ""],
            # re-listed next year
            ["2020", "Iran", "2019-11-16", "2019-11-23", "National", "", "full network", "", "", "", ""],
            ["2019", "India", "2019-08-04", "2019-08-04", "Regional", "Kashmir", "both", "yes", "yes", "no", "YouTube"],
            ["2019", "Kenya", "2019-01-01", "2019-01-02", "National", "", "throttling", "", "", "", ""],
        ],
    )
    got = read_keepiton(f)
    kinds = [(lb.country, lb.kind, tuple(lb.regions), tuple(lb.services)) for lb in got.labels]
    assert kinds == [
        ("IR", IncidentKind.nationwide_outage, (), ()),
        ("IN", IncidentKind.regional_outage, ("Kashmir",), ()),
        ("IN", IncidentKind.service_block, (), ("facebook", "whatsapp", "youtube")),
        ("KE", IncidentKind.throttling, (), ()),
    ]
    ir = got.labels[0]
    assert ir.start == datetime(2019, 11, 16, tzinfo=UTC) and ir.end == datetime(2019, 11, 24, tzinfo=UTC)
    assert all(lb.cause is Cause.government_directed for lb in got.labels)
    bad = write(
        tmp_path / "bad.csv",
        header,
        [["2019", "Iran", "16/11/2019", "", "National", "", "full network", "", "", "", ""]],
    )
    with pytest.raises(FormatError, match=r"bad\.csv:2: start_date: not a date"):
        read_keepiton(bad)
    ongoing = write(
        tmp_path / "ongoing.csv",
        header,
        [
            ["2019", "Iran", "2019-11-16", "ongoing", "National", "", "full network", "", "", "", ""],
            ["2019", "Kenya", "2019-01-01", "2019-01-02", "National", "", "throttling", "", "", "", ""],
        ],
    )
    got = read_keepiton(ongoing)
    assert [lb.country for lb in got.labels] == ["KE"]
    assert got.skipped == 1 and "ongoing.csv:2: end_date 'ongoing' is not a date" in got.reasons[0]
    # the data sets' spellings: Niger is not Nigeria, Turkey is Türkiye
    names = write(
        tmp_path / "names.csv",
        header,
        [
            ["2019", "Niger", "2019-01-01", "2019-01-02", "National", "", "full network", "", "", "", ""],
            ["2019", "Turkey", "2019-01-01", "2019-01-02", "National", "", "full network", "", "", "", ""],
            ["2019", "Myanmar/Burma", "2019-01-01", "2019-01-02", "National", "", "full network", "", "", "", ""],
            # a United Nations style name, and names written without spaces (as folder names are)
            ["2019", "Iran (Islamic Republic of)", "2019-01-01", "2019-01-02", "National", "", "full network"]
            + [""] * 4,
            ["2019", "SriLanka", "2019-01-01", "2019-01-02", "National", "", "full network", "", "", "", ""],
            ["2019", "DemocraticRepublicCongo", "2019-01-01", "2019-01-02", "National", "", "full network"] + [""] * 4,
            ["2019", "RepublicCongo", "2019-01-01", "2019-01-02", "National", "", "full network", "", "", "", ""],
        ],
    )
    assert [lb.country for lb in read_keepiton(names).labels] == ["NE", "TR", "MM", "IR", "LK", "CD", "CG"]


# --- the command -----------------------------------------------------------------------------


def test_observations_import_with_a_format(tmp_path: Path):
    f = write(
        tmp_path / "ke.csv",
        OONI_HEADER,
        [["m1", "KE", "AS12455", "Jambonet", "telegram", "2023-11-09 07:05:00", "tcp"]],
    )
    res = runner.invoke(app, ["observations", "import", "--format", "ooni-raw", str(f)])
    assert res.exit_code == 0, res.output
    assert "2 observations read, 2 new" in res.output
    again = runner.invoke(app, ["observations", "import", "--format", "ooni-raw", str(f)])
    assert "2 observations read, 0 new, 2 already stored" in again.output
    with store.session_scope() as s:
        assert store.count_observations(s) == 2
    bad = write(tmp_path / "bad.csv", ["iso", "name_1", "time_e_utc", "connectivity"], [["IRN", "Tehran", "soon", 5]])
    res = runner.invoke(app, ["observations", "import", "--format", "monash", str(bad)])
    assert res.exit_code != 0 and "bad.csv:2: time_e_utc: not a number" in res.output
    with store.session_scope() as s:
        assert store.count_observations(s) == 2, "a bad file stores nothing"
    res = runner.invoke(app, ["observations", "import", "--format", "csv-of-some-kind", str(bad)])
    assert res.exit_code != 0 and "unknown format 'csv-of-some-kind'" in res.output


# --- OONI hourly aggregations ------------------------------------------------------------------

HOURLY_HEADER = ["hour_utc", "probe_asn", "asn_name", "n_measurements", "n_with_any_failure"]


@pytest.mark.parametrize(
    ("row", "said"),
    [
        (["2023-11-14T08:00Z", 33771, "Safaricom", 4, 5], "bad.csv:3: n_with_any_failure: 5 failed of 4 measurements"),
        (["2023-11-14T08:00Z", 33771, "Safaricom", "ten", 1], "bad.csv:3: n_measurements: expected a whole number"),
        (["2023-11-14T08:00Z", "Safaricom", "Safaricom", 4, 1], "bad.csv:3: probe_asn: not an AS number"),
        (["soon", 33771, "Safaricom", 4, 1], "bad.csv:3: hour_utc:"),
    ],
)
def test_ooni_hourly_bad_row_names_line_and_field_and_stores_nothing(tmp_path: Path, row: list, said: str):
    f = write(tmp_path / "bad.csv", HOURLY_HEADER, [["2023-11-14T07:00Z", "AS33771", "Safaricom", 4, 3], row])
    cmd = ["observations", "import", "--format", "ooni-hourly", "--country", "KE", "--service", "telegram", str(f)]
    res = runner.invoke(app, cmd)
    assert res.exit_code == 2, res.output
    assert said in res.output and "Traceback" not in res.output
    with store.session_scope() as s:
        assert store.count_observations(s) == 0
    nocol = write(tmp_path / "nocol.csv", HOURLY_HEADER[:3] + ["n_measurements"], [["2023-11-14T07:00Z", 1, "x", 4]])
    res = runner.invoke(app, cmd[:-1] + [str(nocol)])
    assert res.exit_code == 2 and "nocol.csv:1: missing column(s) n_with_any_failure" in res.output


def test_import_says_how_many_values_a_file_replaced(tmp_path: Path):
    line = '{"time": "2019-06-09T05:%02d:00Z", "source": "ioda", "signal": "bgp", "country": "KZ", "value": %s}\n'
    first = tmp_path / "first.jsonl"
    first.write_text(line % (0, "1500") + line % (5, "1400"))
    assert (
        "2 observations read, 2 new, 0 already stored"
        in runner.invoke(app, ["observations", "import", str(first)]).output
    )
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text(line % (0, "1500") + line % (5, "900") + line % (10, "1450"))
    res = runner.invoke(app, ["observations", "import", str(fixed)])
    assert res.exit_code == 0, res.output
    assert "3 observations read, 1 new, 1 already stored, 1 stored with another value before" in res.output
    with store.session_scope() as s:
        assert [o.value for o in store.query_observations(s, country="KZ")] == [1500, 900, 1450]


def test_ooni_raw_flag_that_is_not_true_or_false_is_refused_by_line(tmp_path: Path):
    """'maybe' in OONI's anomaly column was read as false: a judged clean measurement, a lower failure rate."""
    flags = write(
        tmp_path / "flags.csv",
        ["measurement_uid", "probe_asn", "measurement_start_time", "anomaly", "confirmed", "failure"],
        [
            ["a", "1", "2023-11-09T07:00:00Z", "true", "", "false"],
            ["b", "1", "2023-11-09T07:10:00Z", "maybe", "0", "0"],
        ],
    )
    res = runner.invoke(
        app, ["observations", "import", "--format", "ooni-raw", "--country", "KE", "--service", "tor", str(flags)]
    )
    assert res.exit_code == 2 and "flags.csv:3: anomaly: expected true or false, got 'maybe'" in res.output
    with store.session_scope() as s:
        assert store.count_observations(s) == 0


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--format", "monash", "--tz", "Mars/Olympus"], "--tz: unknown time zone 'Mars/Olympus': expected an IANA"),
        (
            ["--format", "responsive", "--country", "kenya"],
            "--country: unknown country 'kenya': expected an ISO 3166-1 alpha-2 code: write 'KE'",
        ),
        (
            ["--format", "responsive", "--country", "ZZ"],
            "--country: unknown country 'ZZ': expected an ISO 3166-1 alpha-2 code such as",
        ),
    ],
)
def test_import_options_are_checked_before_the_file(tmp_path: Path, options: list[str], said: str):
    """--tz Mars/Olympus and --country kenya were tracebacks; --country ZZ stored observations of no country."""
    f = write(
        tmp_path / "f.csv",
        ["time_utc", "asn", "ip", "iso", "name_1", "time_e"],
        [["2019-06-09T05:00:00Z", 9198, "a", "IRN", "Tehran", 1]],
    )
    res = runner.invoke(app, ["observations", "import", *options, str(f)])
    assert res.exit_code == 2, res.output
    assert said in res.output, res.output
    with store.session_scope() as s:
        assert store.count_observations(s) == 0


def test_import_of_a_missing_file_says_so_as_every_format_does(tmp_path: Path):
    """jsonl said "[Errno 2] No such file or directory: '...'"; the CSV formats say 'FILE: no such file'."""
    for fmt in ("jsonl", "monash"):
        res = runner.invoke(app, ["observations", "import", "--format", fmt, str(tmp_path / "nowhere.x")])
        assert res.exit_code == 2 and res.output.strip() == f"{tmp_path / 'nowhere.x'}: no such file", res.output


def test_a_format_that_needs_the_country_names_only_the_options_it_needs(tmp_path: Path):
    """ioda-signals asked for '--service' too, which it does not take."""
    f = tmp_path / "export.json"
    f.write_text('{"data": [[]]}')
    res = runner.invoke(app, ["observations", "import", "--format", "ioda-signals", str(f)])
    assert (
        res.exit_code == 2
        and res.output.strip() == f"{f}: format ioda-signals needs the country (--country or --watch)"
    )
    res = runner.invoke(app, ["observations", "import", "--format", "ooni-hourly", str(f)])
    assert "needs the country and the service (--country or --watch, and --service)" in res.output
