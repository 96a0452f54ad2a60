"""The public statement (`pollwatch brief`): every figure from the store, ongoing said as ongoing,
a responder's cause wins, and outside text escaped for its format."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from typer.testing import CliRunner

from pollwatch import brief, store
from pollwatch.cli import app
from pollwatch.models import (
    Anomaly,
    Cause,
    Direction,
    Entity,
    Evidence,
    Family,
    Incident,
    IncidentKind,
    Observation,
    Scope,
)
from pollwatch.override import override_incident

T = datetime(2019, 6, 9, 5, 0, tzinfo=timezone.utc)


def _store_day(watch) -> tuple[Incident, Incident]:
    """A nationwide cut 05:00-05:55 UTC and a Periscope block from 01:00 UTC still
    going, with their anomalies and data.
    """
    obs = []
    t = T - timedelta(hours=6)
    while t < T + timedelta(hours=4):
        down = T <= t < T + timedelta(minutes=55)
        obs.append(Observation(time=t, source="ioda", signal="bgp", country="KZ", value=300.0 if down else 1500.0))
        if t.minute == 0:
            blocked = t >= T - timedelta(hours=4)
            obs.append(
                Observation(
                    time=t,
                    source="ooni",
                    signal="service_failure_rate",
                    country="KZ",
                    service="periscope",
                    value=0.9 if blocked else 0.02,
                    count=40,
                )
            )
        t += timedelta(minutes=5)
    cut_a = Anomaly(
        id="a-cut",
        watch=watch.name,
        source="ioda",
        signal="bgp",
        family=Family.connectivity,
        entity=Entity(country="KZ"),
        direction=Direction.drop,
        start=T,
        end=T + timedelta(minutes=55),
        detected_at=T + timedelta(minutes=5),
        expected=1500.0,
        observed=1500.0,
        depth=0.8,
    )
    cut = Incident(
        id="cut0001",
        watch=watch.name,
        country="KZ",
        family=Family.connectivity,
        kind=IncidentKind.nationwide_outage,
        scope=Scope(
            asns=[9198, 35168, 29355],
            providers=["Kazakhtelecom", "Transtelecom", "Kcell"],
            regions=["KZ-ALA"],
            signals=["bgp"],
            share=0.8,
        ),
        start=T,
        end=T + timedelta(minutes=55),
        detected_at=T + timedelta(minutes=5),
        updated_at=T + timedelta(hours=1),
        status="resolved",
        depth=0.8,
        cause=Cause.government_directed,
        cause_confidence=0.72,
        anomaly_ids=["a-cut"],
        evidence=[
            Evidence(
                name="onset_on_hour",
                supports=Cause.government_directed,
                weight=0.4,
                detail="onset at 11:00 local, on the hour",
            )
        ],
    )
    blk_a = Anomaly(
        id="a-blk",
        watch=watch.name,
        source="ooni",
        signal="service_failure_rate",
        family=Family.service,
        entity=Entity(country="KZ", service="periscope"),
        direction=Direction.rise,
        start=T - timedelta(hours=4),
        detected_at=T - timedelta(hours=3),
        expected=0.02,
        observed=0.9,
        depth=0.88,
    )
    blk = Incident(
        id="blk0001",
        watch=watch.name,
        country="KZ",
        family=Family.service,
        kind=IncidentKind.service_block,
        scope=Scope(
            asns=[9198],
            providers=["Kazakhtelecom"],
            services=["periscope"],
            signals=["service_failure_rate"],
            share=0.2,
        ),
        start=T - timedelta(hours=4),
        detected_at=T - timedelta(hours=3),
        updated_at=T,
        status="open",
        depth=0.88,
        cause=Cause.government_directed,
        cause_confidence=0.45,
        anomaly_ids=["a-blk"],
    )
    with store.session_scope() as s:
        store.upsert_observations(s, obs)
        store.save_anomalies(s, [cut_a, blk_a])
        store.save_incidents(s, [cut, blk])
    return cut, blk


def _draft(watch, **kw) -> str:
    with store.session_scope() as s:
        data = brief.collect(s, watch, since=T - timedelta(days=1), until=T + timedelta(days=1), **kw)
    return brief.render(data, "md")


def _section(text: str, title: str) -> str:
    parts = re.split(r"\n(?=## )", text)
    return next(p for p in parts if p.startswith(f"## {title}"))


def test_every_figure_comes_from_the_store(kz_watch):
    cut, _ = _store_day(kz_watch)
    text = _draft(kz_watch)
    sec = _section(text, "Nationwide internet outage")
    assert "9 June 2019, 05:00 UTC (11:00 ALMT), election day" in sec
    assert "ended on 9 June 2019, 05:55 UTC (11:55 ALMT), after 55 min" in sec
    assert "Kazakhtelecom (AS9198), Transtelecom (AS35168) and Kcell (AS29355)" in sec and "Almaty (KZ-ALA)" in sec
    assert "reaching most users: 80% of the country measured" in sec
    # the depth's figures are the stored observations against the anomaly's expectation
    assert "down to 300 against 1,500 expected, 80% lower" in sec
    assert f"Severity: {cut.severity_band}, {cut.severity_index} on pollwatch's 0-100 scale" in sec
    assert (
        "likely a government-directed shutdown (confidence 72%)" in sec and "onset at 11:00 local, on the hour" in sec
    )
    assert text.startswith("# Internet cut nationwide; Periscope restricted in Kazakhstan on election day")

    # the store changes, the draft follows: a later start, one provider fewer, a smaller share, another confidence
    changed = cut.model_copy(
        update={
            "start": T + timedelta(minutes=30),
            "end": T + timedelta(minutes=100),
            "scope": cut.scope.model_copy(
                update={"asns": [9198, 29355], "providers": ["Kazakhtelecom", "Kcell"], "share": 0.4}
            ),
            "cause_confidence": 0.91,
            "severity": 2.0e9,
        }
    )
    with store.session_scope() as s:
        store.save_incidents(s, [changed])
    sec = _section(_draft(kz_watch), "Nationwide internet outage")
    assert "05:30 UTC (11:30 ALMT)" in sec and "after 1 h 10 min" in sec
    assert "Transtelecom" not in sec and "Kazakhtelecom (AS9198) and Kcell (AS29355)" in sec
    assert "reaching many users: 40% of the country measured" in sec
    assert "very likely a government-directed shutdown (confidence 91%)" in sec
    assert "05:00 UTC (11:00 ALMT)" not in sec and "72%" not in sec
    assert "Severity: critical, 93 on pollwatch's 0-100 scale" in sec


def test_an_ongoing_incident_is_worded_as_ongoing(kz_watch):
    _store_day(kz_watch)
    sec = _section(_draft(kz_watch), "Service blocked: Periscope")
    # the newest stored observation
    assert "It was still ongoing at the last measurement, 9 June 2019, 08:55 UTC (14:55 ALMT)" in sec
    assert "It ended" not in sec
    assert "up to 90%, against 2% usually" in sec
    # an uncertain cause is worded with its confidence
    assert "The cause is possibly a government-directed shutdown (confidence 45%)" in sec
    assert "1 was still ongoing" in _draft(kz_watch)


def test_a_responders_override_wins(kz_watch):
    _store_day(kz_watch)
    override_incident("blk0001", Cause.technical, "alice", "the CDN confirmed an outage of its own", watch=kz_watch)
    sec = _section(_draft(kz_watch), "Service blocked: Periscope")
    assert (
        "A responder (alice) set the cause: technical failure, because: “the CDN confirmed an outage of its own”."
        in sec
    )
    assert "pollwatch's own reading had been government-directed shutdown (confidence 45%)" in sec
    assert "possibly a government-directed" not in sec
    # the one-incident draft Slack posts says the same
    one = brief.incident_statement(kz_watch, "blk0001")
    assert "A responder (alice) set the cause: technical failure" in one and "Nationwide" not in one


def test_outside_text_is_escaped(kz_watch):
    cut, _ = _store_day(kz_watch)
    evil = cut.model_copy(
        update={
            "evidence": [
                Evidence(
                    name="x",
                    supports=Cause.government_directed,
                    weight=0.5,
                    detail="<script>alert(1)</script> [x](http://evil) \x1b[31m",
                )
            ]
        }
    )
    with store.session_scope() as s:
        store.save_incidents(s, [evil])
    with store.session_scope() as s:
        data = brief.collect(s, kz_watch, since=T - timedelta(days=1), until=T + timedelta(days=1))
    page = brief.render(data, "html")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "\x1b" not in page
    assert "src='data:image/png;base64," in page  # charts inline, nothing loaded from elsewhere
    md = brief.render(data, "md")
    assert "<script>" not in md and "\\[x\\](http://evil)" in md and "\x1b" not in md


def test_cli_writes_markdown_with_charts_and_html(kz_watch, tmp_path):
    _store_day(kz_watch)
    runner = CliRunner()
    out = tmp_path / "statement.md"
    res = runner.invoke(app, ["brief", str(kz_watch.source_file), "-o", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    charts = sorted((tmp_path / "statement-charts").glob("*.png"))
    assert len(charts) == 2 and f"(statement-charts/{charts[0].name})" in text
    res = runner.invoke(
        app,
        ["brief", str(kz_watch.source_file), "--incident", "cut0", "--format", "html", "-o", str(tmp_path / "s.html")],
    )
    assert res.exit_code == 0, res.output
    page = (tmp_path / "s.html").read_text()
    assert "Nationwide internet outage" in page and "Periscope" not in page
    res = runner.invoke(app, ["brief", str(kz_watch.source_file), "--incident", "nope"])
    assert res.exit_code != 0 and "no incident 'nope'" in res.output


def test_nothing_measured_is_not_drafted_as_no_disruption(kz_watch):
    """An empty store (or the live one after a demo, which wrote to the replay store) measured nothing: the draft
    must not tell the public there was no disruption."""
    text = _draft(kz_watch)
    assert text.startswith("# No measurements of Kazakhstan recorded\n"), text
    assert "no observation of Kazakhstan from 2019-06-08 05:00 UTC" in text and "disruption recorded" not in text
    with store.session_scope() as s:  # measured, but outside the range asked for
        store.upsert_observations(
            s, [Observation(time=T + timedelta(days=3), source="ioda", signal="bgp", country="KZ", value=1500.0)]
        )
    assert _draft(kz_watch).startswith("# No measurements of Kazakhstan recorded\n")
    with store.session_scope() as s:
        store.upsert_observations(s, [Observation(time=T, source="ioda", signal="bgp", country="KZ", value=1500.0)])
    assert _draft(kz_watch).startswith("# No internet disruption recorded in Kazakhstan\n")


def test_nothing_recorded_and_an_unknown_cause_are_said_plainly(kz_watch):
    with store.session_scope() as s:
        store.upsert_observations(s, [Observation(time=T, source="ioda", signal="bgp", country="KZ", value=1500.0)])
    assert _draft(kz_watch).startswith("# No internet disruption recorded in Kazakhstan\n")
    cut, _ = _store_day(kz_watch)
    with store.session_scope() as s:
        store.save_incidents(
            s, [cut.model_copy(update={"cause": Cause.unknown, "cause_confidence": 0.0, "evidence": []})]
        )
    sec = _section(_draft(kz_watch), "Nationwide internet outage")
    assert "The cause could not be determined from the measurements" in sec and "government" not in sec


def test_a_recurring_cut_is_drafted_with_its_schedule_even_for_its_first_nights(kz_watch):
    """Nightly cuts of one region, stored as one recurring incident: a draft over its first two nights still has it,
    dated from the first night, with every night's window and the night that had no cut."""
    from tests.test_recurring import NIGHT, _nights

    _, events = _nights(kz_watch, [NIGHT + timedelta(days=d) for d in (0, 1, 2, 4)], shift={3: timedelta(hours=2)})
    with store.session_scope() as s:
        store.save_incidents(s, [events[-1].incident])
    with store.session_scope() as s:
        data = brief.collect(s, kz_watch, since=NIGHT - timedelta(hours=1), until=NIGHT + timedelta(days=1, hours=2))
    text = brief.render(data, "md")
    assert text.startswith("# Internet cut in parts of the country in Kazakhstan between 1 and 5 June 2019")
    sec = _section(text, "Regional internet outage, from 31 May 2019, 19:00 UTC (01:00 on 1 June ALMT)")
    assert "It recurred: 4 episodes" in sec and "usually 01:00-09:00 local time (Asia/Almaty)" in sec
    assert "1 June 01:00-09:00, 2 June 01:00-09:00, 3 June 01:00-09:00 and 5 June 03:00-11:00" in sec
    assert "Expected but no cut came on 4 June." in sec
    assert "When (the latest episode): It started on 4 June 2019, 21:00 UTC" in sec
    assert "pollwatch detected its first episode on 31 May 2019, 19:00 UTC" in sec
