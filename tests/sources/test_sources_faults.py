"""Failure is data: every fault mode of every fake yields gaps and a notice, never an exception."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from tests.fakes.observatories import Sleeps, fast_config, observatories, radar_annotation

from pollwatch.models import NoticeLevel
from pollwatch.sources import collect_sources, make_source

T0 = datetime(2019, 6, 9, 0, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(hours=2)
TOKEN = "radar-test-token"
SOURCES = ("ioda", "ooni", "ripestat", "radar")


@pytest.fixture
def obs(tmp_path):
    with observatories(radar_token=TOKEN) as o:
        o.ripestat.resources["KZ"] = {"asn": ["9198"], "ipv4": ["2.72.0.0/13"], "ipv6": []}
        o.radar.annotations.append(radar_annotation("KZ", T0, T1))
        yield o


def run(obs, name, watch, timeout=0.5, retries=1):
    fake = getattr(obs, name)
    cfg = fast_config(fake.url, timeout=timedelta(seconds=timeout), retries=retries)
    kw = {"token": TOKEN} if name == "radar" else {}
    src = make_source(name, watch, config=cfg, sleep=Sleeps(), **kw)
    return src, asyncio.run(src.collect(watch, T0, T1))


def covered(src, watch) -> set[tuple[str, str | None]]:
    return set(src.expected(watch))


@pytest.mark.parametrize("name", SOURCES)
@pytest.mark.parametrize("mode", ["500", "429", "truncated", "wrong_shape"])
def test_broken_source_yields_gaps_for_everything_it_should_cover(obs, kz_watch, name, mode):
    getattr(obs, name).fail(mode)
    src, res = run(obs, name, kz_watch)
    assert res.observations == []  # nothing half-read
    gapped = {(g.entity, g.signal) for g in res.gaps}
    assert covered(src, kz_watch) <= gapped
    assert all(g.source == name and g.start == T0 and g.end == T1 and g.reason for g in res.gaps)
    problems = [n for n in res.notices if n.level in (NoticeLevel.warning, NoticeLevel.error)]
    assert len(problems) == 1 and problems[0].watch == kz_watch.name and problems[0].source == name
    assert {"500": "http", "429": "rate_limited", "truncated": "malformed", "wrong_shape": "shape"}[mode] in problems[
        0
    ].message


@pytest.mark.parametrize("name", SOURCES)
def test_hang_past_the_timeout_is_a_gap(obs, kz_watch, name):
    fake = getattr(obs, name)
    fake.hang_seconds = 2
    fake.fail("hang")
    src, res = run(obs, name, kz_watch, timeout=0.2, retries=0)
    assert covered(src, kz_watch) <= {(g.entity, g.signal) for g in res.gaps}
    assert any("timeout" in n.message for n in res.notices)


@pytest.mark.parametrize("name", SOURCES)
@pytest.mark.parametrize("mode", ["500", "429"])
def test_a_transient_failure_is_retried_and_leaves_no_gap(obs, kz_watch, name, mode):
    getattr(obs, name).fail(mode, times=1)
    _, res = run(obs, name, kz_watch, retries=2)
    assert res.gaps == []
    assert [n for n in res.notices if n.level != NoticeLevel.info] == []
    assert res.observations or res.corroborations


def test_empty_results(obs, kz_watch):
    for fake in obs.all:
        fake.fail("empty")
    src, ioda = run(obs, "ioda", kz_watch)
    assert ioda.observations == [] and covered(src, kz_watch) <= {(g.entity, g.signal) for g in ioda.gaps}
    assert any("no series" in n.message for n in ioda.notices)
    # OONI: an empty result means no measurements: no-data observations, not gaps
    _, ooni = run(obs, "ooni", kz_watch)
    assert ooni.gaps == [] and ooni.observations and all(o.value is None and o.count == 0 for o in ooni.observations)
    src, ripe = run(obs, "ripestat", kz_watch)
    assert ripe.observations == [] and covered(src, kz_watch) <= {(g.entity, g.signal) for g in ripe.gaps}
    _, radar = run(obs, "radar", kz_watch)
    assert radar.gaps == [] and radar.corroborations == []


def test_one_failure_among_many_requests_gaps_only_its_entities(obs, kz_watch):
    obs.ioda.fail("500", path="/signals/raw/region")
    src, res = run(obs, "ioda", kz_watch)
    assert {g.entity for g in res.gaps} == {f"KZ/region={r.code}" for r in kz_watch.regions}
    assert {o.entity_key for o in res.observations} == {"KZ"} | {f"KZ/asn={p.asn}" for p in kz_watch.providers}
    assert res.notices[0].level == NoticeLevel.warning  # some requests failed, not all


def test_other_sources_carry_on_when_one_is_down(obs, kz_watch, tmp_path):
    obs.ioda.fail("500")
    obs.ooni.hang_seconds = 2
    w = kz_watch.model_copy(
        update={
            "sources": {
                "ioda": fast_config(obs.ioda.url),
                "ooni": fast_config(obs.ooni.url),
                "ripestat": fast_config(obs.ripestat.url, options={"cache_dir": str(tmp_path)}),
                "radar": fast_config(obs.radar.url),
            }
        }
    )
    out = asyncio.run(collect_sources(w, T0, T1, token=TOKEN, sleep=Sleeps()))
    assert set(out) == set(SOURCES)
    assert out["ioda"].observations == [] and out["ioda"].gaps and out["ioda"].notices[0].level == NoticeLevel.error
    assert out["ooni"].observations and out["ooni"].gaps == []
    assert out["ripestat"].observations and out["radar"].corroborations


def test_an_unexpected_crash_is_still_a_gap_and_a_notice(obs, kz_watch, monkeypatch):
    from pollwatch.sources import ooni

    def boom(*args):
        raise RuntimeError("parser exploded")

    monkeypatch.setattr(ooni, "parse_aggregation", boom)
    src, res = run(obs, "ooni", kz_watch)
    assert covered(src, kz_watch) <= {(g.entity, g.signal) for g in res.gaps}
    assert res.notices[0].level == NoticeLevel.error and "parser exploded" in res.notices[0].message


def test_an_empty_range_is_reported_not_raised(obs, kz_watch):
    src = make_source("ioda", kz_watch, config=fast_config(obs.ioda.url))
    res = asyncio.run(src.collect(kz_watch, T1, T0))
    assert res.notices and res.notices[0].level == NoticeLevel.error and "empty range" in res.notices[0].message
