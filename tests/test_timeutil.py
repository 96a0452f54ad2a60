"""pollwatch's one ISO 8601 time parser: what sources, adapters, playbooks, the CLI and the audit log read."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from pollwatch.timeutil import parse_time, parse_time_or_none

UTC = timezone.utc
T = datetime(2019, 6, 9, 5, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2019-06-09T05:00:00Z",
        "2019-06-09T05:00Z",
        "2019-06-09T05:00:00+00:00",
        "2019-06-09T11:00:00+06:00",  # Almaty
        "2019-06-09T11:00+0600",
        "2019-06-09 05:00",  # no zone: UTC
        "20190609T050000Z",
        " 2019-06-09T05:00:00.000000Z ",
        T,
        T.astimezone(ZoneInfo("Asia/Almaty")),
    ],
)
def test_every_spelling_of_one_instant_reads_as_the_same_utc_time(text):
    got = parse_time(text)
    assert got == T and got.tzinfo is UTC


def test_a_bare_date_is_its_midnight_utc():
    assert parse_time("2019-06-09") == parse_time(date(2019, 6, 9)) == datetime(2019, 6, 9, tzinfo=UTC)


def test_a_time_without_zone_reads_in_the_zone_given():
    assert parse_time("2019-06-09T11:00", zone=ZoneInfo("Asia/Almaty")) == T
    assert parse_time("2019-06-09T11:00", zone=timezone(timedelta(hours=6))) == T
    assert parse_time("2019-06-09T05:00Z", zone=ZoneInfo("Asia/Almaty")) == T  # a zone in the text wins


@pytest.mark.parametrize("text", ["9 June 2019", "2019-06-09T25:00", "", "2019-6-9", "now"])
def test_what_is_not_iso_8601_is_refused_by_name(text):
    with pytest.raises(ValueError, match="not an ISO 8601 time: " + repr(text)):
        parse_time(text)


@pytest.mark.parametrize("value", [None, "", "garbage", 12, "2019-06-09T25:00"])
def test_an_optional_field_that_is_empty_or_not_a_time_is_none(value):
    assert parse_time_or_none(value) is None


def test_an_optional_field_that_is_a_time_is_read():
    assert parse_time_or_none("2019-06-09T11:00:00+06:00") == T


def test_prefects_own_datetime_becomes_a_plain_one_that_stays_aware_in_sums():
    """Flow parameters and run times come as Prefect's DateTime, whose sum with a timedelta is naive: a tick
    computed from one would compare wrongly with every aware time (or raise)."""
    from prefect.types._datetime import DateTime

    scheduled = DateTime(2019, 6, 9, 11, 0, tzinfo=timezone(timedelta(hours=6)))
    assert (scheduled + timedelta(minutes=5)).tzinfo is None, "Prefect's own behaviour, which this guards against"
    t = parse_time(scheduled)
    assert type(t) is datetime and t == datetime(2019, 6, 9, 5, 0, tzinfo=timezone.utc)
    assert (t + timedelta(minutes=5)).tzinfo is not None
