"""Cloudflare Radar client: only with a token; labels kept; the token never leaks."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

import pytest
from tests.fakes.observatories import RadarFake, Sleeps, fast_config, radar_annotation, radar_anomaly

from pollwatch.sources import RadarSource, collect_sources, make_source

T0 = datetime(2019, 6, 9, 0, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(hours=6)
TOKEN = "radar-test-token-9f3b"


@pytest.fixture
def radar():
    with RadarFake(token=TOKEN) as fake:
        fake.annotations.append(
            radar_annotation(
                "KZ", T0 + timedelta(hours=1), T0 + timedelta(hours=2), cause="GOVERNMENT_DIRECTED", typ="NATIONWIDE"
            )
        )
        fake.annotations.append(radar_annotation("UZ", T0, T1))
        fake.anomalies.append(radar_anomaly("KZ", T0 + timedelta(hours=1), None, asn=9198))
        yield fake


def source(fake, token=TOKEN):
    return RadarSource(fast_config(fake.url), token=token, sleep=Sleeps())


def everything(res) -> str:
    return res.model_dump_json()


def test_without_a_token_radar_is_skipped(radar, kz_watch, monkeypatch):
    monkeypatch.delenv("POLLWATCH_RADAR_API_TOKEN", raising=False)
    res = asyncio.run(RadarSource(fast_config(radar.url)).collect(kz_watch, T0, T1))
    assert radar.requests == [] and res.gaps == [] and res.corroborations == []
    assert any("no API token" in n.message and n.level == "info" for n in res.notices)


def test_annotations_and_anomalies_keep_their_labels(radar, kz_watch):
    res = asyncio.run(source(radar).collect(kz_watch, T0, T1))
    assert res.gaps == []
    ann = [c for c in res.corroborations if c.kind == "radar_annotation"]
    assert len(ann) == 1 and ann[0].cause == "GOVERNMENT_DIRECTED" and ann[0].outage_type == "NATIONWIDE"
    assert ann[0].start == T0 + timedelta(hours=1) and ann[0].end == T0 + timedelta(hours=2) and ann[0].entity == "KZ"
    an = [c for c in res.corroborations if c.kind == "radar_anomaly"]
    assert len(an) == 1 and an[0].entity == "KZ/asn=9198" and an[0].status == "VERIFIED" and an[0].end is None
    assert radar.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    # 48 h look-back
    assert (
        radar.requests[0].query["location"] == "KZ" and radar.requests[0].query["dateStart"] == "2019-06-07T00:00:00Z"
    )


def test_token_from_the_environment(radar, kz_watch, monkeypatch):
    monkeypatch.setenv("POLLWATCH_RADAR_API_TOKEN", TOKEN)
    res = asyncio.run(make_source("radar", kz_watch, base_url=radar.url).collect(kz_watch, T0, T1))
    assert len(res.corroborations) == 2


def test_the_token_never_appears_in_results_errors_or_logs(radar, kz_watch, caplog):
    caplog.set_level(logging.DEBUG)
    radar.fail("echo_auth")
    src = source(radar)
    res = asyncio.run(src.collect(kz_watch, T0, T1))
    assert {g.signal for g in res.gaps} == {"outage_annotations", "traffic_anomalies"}
    assert res.notices and "***" in everything(res)
    assert TOKEN not in everything(res) and TOKEN not in repr(src) and TOKEN not in caplog.text
    radar.clear()
    ok = asyncio.run(src.collect(kz_watch, T0, T1))
    assert TOKEN not in everything(ok) and ok.corroborations


def test_a_wrong_token_is_a_gap_and_a_notice(radar, kz_watch):
    res = asyncio.run(source(radar, token="wrong").collect(kz_watch, T0, T1))
    assert len(res.gaps) == 2 and res.notices[0].level == "error"
    assert "403" in res.notices[0].message


def test_collect_sources_passes_the_token_to_radar_only(radar, kz_watch):
    w = kz_watch.model_copy(update={"sources": {"radar": fast_config(radar.url)}})
    out = asyncio.run(collect_sources(w, T0, T1, token=TOKEN, sleep=Sleeps()))
    assert list(out) == ["radar"] and len(out["radar"].corroborations) == 2


def test_a_late_annotation_with_an_earlier_start_is_picked_up_once(radar, kz_watch):
    """Radar publishes annotations after the fact: the next collect looks back 48 h and keeps each id once."""
    radar.annotations.clear()
    tick = T0 + timedelta(hours=5)
    first = asyncio.run(source(radar).collect(kz_watch, tick, tick + timedelta(minutes=5)))
    assert [c for c in first.corroborations if c.kind == "radar_annotation"] == []
    # published at 05:07 about a shutdown that began at 02:00 (and the same record listed twice over the pages)
    late = radar_annotation("KZ", T0 + timedelta(hours=2), None, cause="GOVERNMENT_DIRECTED", id="late-1")
    radar.annotations += [late, late]
    res = asyncio.run(
        RadarSource(fast_config(radar.url, options={"limit": 1}), token=TOKEN, sleep=Sleeps()).collect(
            kz_watch, tick + timedelta(minutes=5), tick + timedelta(minutes=10)
        )
    )
    ann = [c for c in res.corroborations if c.kind == "radar_annotation"]
    assert [(c.id, c.start) for c in ann] == [("radar-annotation:late-1", T0 + timedelta(hours=2))]
    offsets = [r.query["offset"] for r in radar.requests if r.path.endswith("/outages")][-3:]
    assert offsets == ["0", "1", "2"]  # pages of one, read while full
