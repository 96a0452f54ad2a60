"""Sources in the product: `pollwatch fetch`, `pollwatch coverage`, the coverage report and a live watch tick."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pollwatch.cli import app
from pollwatch.jsonl import read_observations, write_observations
from pollwatch.models import Gap, Observation
from pollwatch.sources.coverage import blind_spots, coverage_report, render_table
from tests.fakes.observatories import observatories, radar_annotation
from tests.fakes.watches import write_kz_watch

T0 = datetime(2019, 6, 9, 0, 0, tzinfo=timezone.utc)
KZ = Path(__file__).resolve().parents[2] / "playbooks" / "watches" / "kz-2019-presidential.yaml"
TOKEN = "radar-flow-token"


@pytest.fixture
def obs():
    with observatories(radar_token=TOKEN) as o:
        o.ripestat.resources["KZ"] = {"asn": ["9198", "29355"], "ipv4": ["2.72.0.0/13"], "ipv6": []}
        o.radar.annotations.append(radar_annotation("KZ", T0, T0 + timedelta(hours=1)))
        yield o


def test_fetch_writes_observations_and_reports_problems(obs, tmp_path):
    out, records = tmp_path / "ioda.jsonl", tmp_path / "records.jsonl"
    obs.ioda.fail("truncated", path="/signals/raw/region")
    r = CliRunner().invoke(
        app,
        [
            "fetch",
            "--source",
            "ioda",
            "--watch",
            str(KZ),
            "--from",
            "2019-06-09T00:00Z",
            "--until",
            "2019-06-09T01:00Z",
            "--base-url",
            obs.ioda.url,
            "--out",
            str(out),
            "--records",
            str(records),
        ],
    )
    assert r.exit_code == 0, r.output
    got = read_observations(out)
    assert got and {o.source for o in got} == {"ioda"} and all(o.provenance and o.provenance.payload_hash for o in got)
    assert "gap(s)" in r.output and "KZ/region=KZ-ALA" in r.output and "[warning]" in r.output
    assert records.read_text() == ""


def test_fetch_exits_1_when_the_source_is_down_and_can_store(obs, tmp_path):
    obs.ooni.fail("wrong_shape")
    r = CliRunner().invoke(
        app,
        [
            "fetch",
            "-s",
            "ooni",
            "-w",
            str(KZ),
            "--from",
            "2019-06-09",
            "--until",
            "2019-06-09T02:00Z",
            "--base-url",
            obs.ooni.url,
            "--out",
            str(tmp_path / "o.jsonl"),
            "--store",
        ],
    )
    assert r.exit_code == 1 and "[error]" in r.output
    from pollwatch import store

    with store.session_scope() as s:
        # 7 services + 3 circumvention tools, on 5 providers and pooled over the country
        assert len(store.list_gaps(s, "kz-2019-presidential")) == 10 * (5 + 1)
        assert store.list_notices(s, "kz-2019-presidential")


def test_fetch_rejects_unknown_sources_and_backwards_ranges():
    r = CliRunner().invoke(app, ["fetch", "-s", "nope", "-w", str(KZ), "--from", "2019-06-09"])
    assert r.exit_code == 2 and "unknown source" in r.output
    r = CliRunner().invoke(app, ["fetch", "-s", "ioda", "-w", str(KZ), "--from", "2019-06-09", "--until", "2019-06-08"])
    assert r.exit_code == 2 and "must be after" in r.output


def _obs(t, source, signal, value, asn=None, service=None, region=None):
    return Observation(
        time=t, source=source, signal=signal, country="KZ", asn=asn, service=service, region=region, value=value
    )


def test_coverage_report_finds_blind_spots(kz_watch):
    data = [_obs(T0, "ioda", "bgp", 100.0)]
    data += [_obs(T0, "ioda", "bgp", 10.0, asn=p.asn) for p in kz_watch.providers]
    data += [_obs(T0, "ooni", "service_failure_rate", 0.1, asn=9198, service=s.name) for s in kz_watch.services]
    data += [_obs(T0, "ooni", "service_failure_rate", None, asn=29355, service=s.name) for s in kz_watch.services]
    gaps = [
        Gap(
            source="ioda",
            signal="bgp",
            entity="KZ/region=KZ-ALA",
            start=T0,
            end=T0 + timedelta(hours=1),
            reason="HTTP 500",
        )
    ]
    rows = coverage_report(kz_watch, data, gaps)
    by = {(r.kind, r.entity, r.source): r for r in rows}
    assert by[("country", "KZ", "ioda")].status == "ok"
    assert by[("country", "KZ", "ripestat")].status == "missing"
    assert (
        by[("region", "KZ/region=KZ-ALA", "ioda")].status == "blind spot"
        and by[("region", "KZ/region=KZ-ALA", "ioda")].gaps == 1
    )
    assert by[("region", "KZ/region=KZ-AST", "ioda")].status == "missing"
    kcell = by[("provider", "KZ/asn=29355", "ooni")]
    assert (
        kcell.status == "blind spot"
        and "mobile" in kcell.name
        and len(kcell.missing) == len(kz_watch.services) + len(kz_watch.circumvention)
    )
    ktel = by[("provider", "KZ/asn=9198", "ooni")]
    assert ktel.status == "ok" and set(ktel.missing) == {c.name for c in kz_watch.circumvention}
    wa = by[("service", "KZ/service=whatsapp", "ooni")]
    assert wa.status == "partial" and any("Kcell (AS29355, mobile)" == m for m in wa.missing)
    spots = blind_spots(rows)
    assert any("Kcell" in s and "ooni" in s for s in spots) and any("service tor" in s for s in spots)
    assert "blind spot" in render_table(rows)


def test_coverage_command_reads_a_file(kz_watch, tmp_path):
    f = tmp_path / "obs.jsonl"
    write_observations([_obs(T0 + timedelta(minutes=5 * i), "ioda", "bgp", 100.0) for i in range(12)], f)
    r = CliRunner().invoke(app, ["coverage", "--watch", str(KZ), "--observations", str(f)])
    assert r.exit_code == 0, r.output
    assert "country" in r.output and "12/12" in r.output and "blind spots" in r.output
    r = CliRunner().invoke(app, ["coverage", "--watch", str(KZ), "--observations", str(f), "--json"])
    rows = json.loads(r.output)
    assert next(x for x in rows if x["kind"] == "country" and x["source"] == "ioda")["share"] == 1.0


@pytest.mark.prefect
def test_live_watch_tick_collects_from_every_enabled_source(obs, tmp_path, prefect_harness, monkeypatch):
    from pollwatch.flows.watch_tick import watch_tick
    from pollwatch import store

    monkeypatch.setenv("POLLWATCH_RADAR_API_TOKEN", TOKEN)
    watch_file = write_kz_watch(tmp_path, "kz-sources-test", fast=True, radar=True)
    obs.ioda.fail("500", path="/signals/raw/asn")
    obs.ooni.silent.add(29355)
    tick = datetime(2019, 6, 9, 6, 0, tzinfo=timezone.utc)
    result = watch_tick(str(watch_file), tick, None, obs.base_urls())
    assert result["skipped"] is False
    assert set(result["sources"]) == {"ioda", "ooni", "ripestat", "radar"}
    assert result["sources"]["radar"]["records"] == 1 and result["sources"]["ioda"]["gaps"] == 6
    with store.session_scope() as s:
        seen = store.query_observations(s, country="KZ")
        assert {o.source for o in seen} == {"ioda", "ooni", "ripestat"}
        assert min(o.time for o in seen) >= tick - timedelta(days=2)
        gaps = store.list_gaps(s, "kz-sources-test")
        assert {g.entity for g in gaps if g.source == "ioda"} == {"KZ/asn=9198", "KZ/asn=29355"}
        notices = store.list_notices(s, "kz-sources-test")
        assert any(n.source == "ioda" and n.level == "warning" for n in notices)
        assert TOKEN not in json.dumps([n.message for n in notices] + [g.reason for g in gaps])
        records = store.list_corroborations(s, "KZ", T0 - timedelta(days=1), tick)
    # Radar's annotation is kept, and attribution sees its cause label on this and later ticks
    assert [(r.kind, r.cause) for r in records] == [("radar_annotation", "GOVERNMENT_DIRECTED")]
    from pollwatch.tasks.record import load_attribution_context

    ctx = load_attribution_context.fn("kz-sources-test", "KZ", tick - timedelta(days=8), tick)
    assert [(e.type, e.cause, e.source, e.start) for e in ctx.events] == [
        ("radar_outage", "GOVERNMENT_DIRECTED", "radar", T0)
    ]
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["coverage-kz-sources-test"]))
        )
    assert arts and arts[0].type == "table"
    table = str(arts[0].data)
    assert "Kcell (AS29355, mobile)" in table and "blind spot" in table and "Kcell" in (arts[0].description or "")
    again = watch_tick(str(watch_file), tick, None, obs.base_urls())
    assert again["skipped"] is True
