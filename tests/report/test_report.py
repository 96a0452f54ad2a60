"""The HTML report and the #KeepItOn export, built from a stored simulated election day."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser


from pollwatch import audit, report, store
from tests.fakes.reports import report_template, stored  # noqa: F401 (fixtures)


def _collect(watch, info, **kw):
    with store.session_scope() as s:
        return report.collect(s, watch, info["since"], info["until"], **kw)


class _Refs(HTMLParser):
    """Every URL-bearing attribute and every tag, to prove the page loads nothing from elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for k, v in attrs:
            if k in ("src", "href", "xlink:href", "action", "data") and v:
                self.urls.append(v)


def test_report_shows_every_incident_and_is_self_contained(kz_watch, stored):
    data = _collect(kz_watch, stored)
    assert len(data.incidents) == 6
    page = report.render_html(data)
    for inc in stored["incidents"]:
        assert f'data-incident-id="{inc.id}"' in page
        assert inc.kind.value in page
    assert "Nationwide internet outage" in page and "government_directed" in page
    p = _Refs()
    p.feed(page)
    assert "script" not in p.tags and "link" not in p.tags and "iframe" not in p.tags
    assert all(u.startswith("#") or u.startswith("data:") for u in p.urls), p.urls
    assert "default-src 'none'" in page  # the CSP forbids any network load
    assert not re.search(r"https?://", page.split("</head>")[1]), "no absolute URLs in the body"


def test_report_sections(kz_watch, stored):
    data = _collect(kz_watch, stored)
    page = report.render_html(data)
    # charts of signals with the detector's expectation and incident windows
    assert data.series and sum(s.anomalous for s in data.series) >= 1
    assert page.count('<svg class="series"') == len(data.series)
    assert any(v is not None for s in data.series for _, v in s.expected)
    # alerts, gaps, methodology with the thresholds in force, audit chain state
    assert "#pollwatch-kz" in page
    assert "no data from the source for this series" in page
    assert "moving_median" in page and "0.99" in page and "Phases" in page
    assert "verified intact" in page and data.audit["ok"] and data.audit["entries"] > 0
    # responder override shows who and why
    assert "alice" in page and "grid failure" in page
    # alert text is escaped, never markup
    assert "<script>" not in page


def test_report_limits_charts_and_downsamples(kz_watch, stored):
    data = _collect(kz_watch, stored, max_charts=3, max_points=100)
    assert len(data.series) == 3 and data.series_omitted > 0
    assert all(s.anomalous for s in data.series)  # anomalous series come first
    assert all(len(s.points) <= 101 for s in data.series)
    # downsampling keeps the outage visible (min per bucket for drop signals)
    country_bgp = next((s for s in data.series if s.entity == "KZ" and s.signal == "bgp"), None)
    if country_bgp is not None:
        vals = [v for _, v in country_bgp.points if v is not None]
        assert min(vals) < 0.2 * max(vals)


def test_report_shows_a_broken_chain(kz_watch, stored):
    with store.get_engine().begin() as conn:
        conn.exec_driver_sql("UPDATE audit_entry SET payload = '{}' WHERE seq = 3")
    page = report.render_html(_collect(kz_watch, stored))
    assert "BROKEN" in page and "entry 3" in page


def test_build_report_records_the_file_hash(kz_watch, stored, tmp_path):
    res = report.build_report(kz_watch, stored["since"], stored["until"], tmp_path / "r.html")
    assert res.incidents == 6 and res.audit_ok
    assert res.sha256 == audit.sha256_hex((tmp_path / "r.html").read_bytes())
    with store.session_scope() as s:
        e = audit.entries(s, kind="report")[-1]
        assert e.payload["sha256"] == res.sha256 and audit.verify(s).ok
    assert "| Nationwide internet outage |" in res.markdown
    assert {r["kind"] for r in res.table} == {i.kind.value for i in stored["incidents"]}


def test_keepiton_export_vocabulary(kz_watch, stored):
    rows = report.keepiton_rows(kz_watch, stored["incidents"])
    text = report.keepiton_csv_text(rows)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert list(parsed[0].keys()) == report.KEEPITON_COLUMNS
    by_kind = {r["pollwatch_kind"]: r for r in parsed}
    nat = by_kind["nationwide_outage"]
    assert (nat["shutdown_type"], nat["shutdown_extent"], nat["geo_scope"]) == ("Shutdown", "full network", "National")
    assert nat["affected_network"] == "Broadband, Mobile" and nat["country"] == "Kazakhstan"
    assert nat["facebook"] == "no" and nat["actual_cause"] == "Elections"
    reg = by_kind["regional_outage"]
    assert reg["geo_scope"] == "Regional" and reg["area"] == "Turkistan" and reg["actual_cause"] == ""
    svc = by_kind["service_block"]
    assert svc["shutdown_extent"] == "service-based" and svc["other_services"] == "periscope"
    thr = by_kind["throttling"]
    assert thr["shutdown_extent"] == "throttling" and thr["affected_network"] == "Mobile" and thr["twitter"] == "yes"
    net = by_kind["network_outage"]
    assert net["affected_network"] == "Broadband" and "Transtelecom" in net["area"]
    circ = by_kind["circumvention_block"]
    assert circ["shutdown_extent"] == "service-based" and "tor" in circ["other_services"]
    # dates are the local calendar day, times UTC
    assert reg["start_date"] == "2019-06-09" and reg["start_utc"].startswith("2019-06-08T21:00")
    assert all(
        r[k] in ("yes", "no") for r in parsed for k in ("facebook", "twitter", "whatsapp", "instagram", "telegram")
    )
    only = report.keepiton_rows(kz_watch, stored["incidents"], shutdowns_only=True)
    assert {r["pollwatch_cause"] for r in only} == {"government_directed"}


def test_the_charts_draw_the_expectation_the_detector_judged_against(kz_watch):
    """Every anomaly the detector opens was judged against an expectation; the report's chart of that
    series shows, at the point that opened it, that same expectation (not a baseline of its own)."""
    from datetime import timedelta

    from pollwatch.detect import detect
    from pollwatch.pipeline import judgement_times
    from pollwatch.simulate import election_day_events, simulate
    from pollwatch.timeutil import parse_time

    day = parse_time(kz_watch.at_offset(timedelta(0)))
    start, since, until = day - timedelta(days=2), day - timedelta(hours=6), day + timedelta(hours=18)
    obs = simulate(kz_watch, start, until, election_day_events(kz_watch), seed=5).observations
    with store.session_scope() as s:
        store.upsert_observations(s, obs)
    ticks = judgement_times(kz_watch, start, until)
    opened = [
        (prev, e)
        for prev, tick_events in _by_tick(detect(kz_watch, None, ticks, obs).events, ticks)
        for e in tick_events
        if e.change == "opened" and e.anomaly.start >= since and "corroborated_by" not in e.anomaly.evidence
    ]
    assert len(opened) >= 5, "the simulated day opens anomalies of several signals"
    with store.session_scope() as s:
        data = report.collect(s, kz_watch, since, until, max_charts=1000, max_points=10**6)
    charts = {(c.source, c.signal, c.entity): c for c in data.series}
    for prev, e in opened:
        a = e.anomaly
        chart = charts[(a.source, a.signal, a.entity.key)]
        lag = kz_watch.signals[a.signal].lag
        shown = dict(chart.expected)
        # the point that opened it: new at this tick, with the anomaly's observed value
        at = [t for t, v in chart.points if v == a.observed and prev < t + lag <= e.tick]
        assert at and any(shown[t] == a.expected for t in at), (a.signal, a.entity.key, a.expected, at)
    page = report.render_html(data)
    assert "detector&#39;s expectation" in page or "detector's expectation" in page


def _by_tick(events, ticks):
    """(previous tick, the events of a tick) for every tick."""
    out, prev = [], None
    by = {}
    for e in events:
        by.setdefault(e.tick, []).append(e)
    for t in ticks:
        out.append((prev or t, by.get(t, [])))
        prev = t
    return out


def test_override_and_classification_history_read_as_sentences(kz_watch, stored):
    """They were printed as Python dicts: {'cause': 'power_outage', 'by': 'alice', ... 'from': None ...}."""
    data = _collect(kz_watch, stored)
    inc = data.incidents[0]
    data.incidents[0] = inc.model_copy(
        update={
            "override": {
                "cause": "power_outage",
                "by": "alice <b>",
                "why": "grid failure",
                "at": "2019-06-09T06:00:00Z",
                "previous": {"cause": "unknown", "confidence": 0.4},
            },
            "kind_history": [
                {"at": "2019-06-09T05:00:00Z", "from": None, "to": "network_outage", "share": 0.2},
                {"at": "2019-06-09T05:10:00Z", "from": "network_outage", "to": "nationwide_outage", "share": 0.9},
            ],
        }
    )
    page = report.render_html(data)
    text = re.sub(r"<[^>]+>", "", page)
    assert (
        "Override: cause power_outage set by alice &lt;b&gt; at 2019-06-09 06:00 UTC (12:00 local): grid failure "
        "(was unknown at 40%)"
    ) in text
    assert "2019-06-09 05:00 UTC (11:00 local): first classified as network_outage (share 20%)" in text
    assert "2019-06-09 05:10 UTC (11:10 local): network_outage → nationwide_outage (share 90%)" in text
    assert "cause: unknown → power_outage" in text  # the audited override in the overrides table
    assert "{&#39;" not in page and "None" not in text
