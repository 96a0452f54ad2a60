"""Block Kit rendering, routing rules and charts (no network)."""

from __future__ import annotations

from datetime import timedelta

from slack_sdk.models.blocks import Block

from tests.fakes.slack_scenarios import T0, anomalies_and_observations, nationwide, network_outage, service_block, story
from pollwatch.charts import incident_chart
from pollwatch.models import Notice, NoticeLevel
from pollwatch.notify import render, routing
from pollwatch.notify.render import Links
from pollwatch import words


def assert_block_kit(blocks: list[dict]) -> None:
    """Every block round-trips through slack_sdk's Block Kit models and passes their validation."""
    assert 0 < len(blocks) <= 50
    for b in blocks:
        parsed = Block.parse(b)
        assert parsed is not None, b
        parsed.validate_json()
        assert parsed.to_dict() == b


def test_depth_agrees_with_the_numbers_beside_it(kz_watch):
    """A recovering anomaly: its latest point is near the expectation; the % beside it says so, and the deepest
    drop is named as such (was '2,845 vs 2,850 expected, drop −15%')."""
    inc = nationwide(kz_watch)
    anomalies, _ = anomalies_and_observations(kz_watch, inc)
    a = next(x for x in anomalies if x.signal == "bgp" and x.entity.level == "country")
    recovering = a.model_copy(update={"observed": 2845.0, "expected": 2850.0, "depth": 0.15})
    (line,) = [x for x in words.depth_lines(inc, [recovering])]
    assert line == "bgp (KZ): 2,845 vs 2,850 expected (−0%), deepest drop −15%"
    assert (
        f"{inc.severity_index}/100, {inc.severity_band}"
        in render.root_message(kz_watch, inc, key="k", anomalies=anomalies).plain()
    )


def test_root_message_shows_what_responders_act_on(kz_watch):
    inc = nationwide(kz_watch)
    anomalies, _ = anomalies_and_observations(kz_watch, inc)
    msg = render.root_message(
        kz_watch,
        inc,
        key="k1",
        anomalies=anomalies,
        links=Links(flow_run_url="http://127.0.0.1:4200/runs/flow-run/abc"),
        mention="<!here>",
    )
    assert_block_kit(msg.blocks)
    plain = msg.plain()
    for expected in (
        "Nationwide internet outage",
        "Kazakhstan",
        "Kazakhtelecom (AS9198)",
        "Transtelecom (AS35168)",
        "Almaty (KZ-ALA)",
        "2019-06-09 05:00 UTC",
        "11:00 ALMT, election day",
        "bgp (KZ): 300 vs 1,500 expected (−80%)",
        "Severity",
        "bgp, active_probing, telescope",
        "government-directed shutdown (confidence 82%)",
        "3 independent ASNs dropped within 4 minutes",
        "ioda.inetintel.cc.gatech.edu/country/KZ?from=",
        "explorer.ooni.org/chart/mat?probe_cc=KZ",
        "127.0.0.1:4200/runs/flow-run/abc",
        "@here",
    ):
        assert expected in plain, (expected, plain)
    assert msg.text.startswith("<!here> ONGOING: Nationwide internet outage in Kazakhstan")
    assert msg.metadata == {
        "event_type": "pollwatch_alert",
        "event_payload": {"watch": kz_watch.name, "idempotency_key": "k1", "role": "root", "incident_id": inc.id},
    }
    # the evidence supporting the chosen cause comes first
    assert plain.index("3 independent ASNs") < plain.index("onset at 11:00")
    assert "no regional power event" not in plain
    # the console shows the link buttons once; the responders' buttons (no url) left an empty 'links:' line
    assert "actions" in [b["type"] for b in msg.blocks if not any(e.get("url") for e in b.get("elements", []))]
    assert [line for line in plain.splitlines() if line.strip().startswith("links:")] == [
        next(line for line in plain.splitlines() if "ioda.inetintel.cc.gatech.edu" in line)
    ]


def test_update_end_and_notice_messages(kz_watch):
    events = story(nationwide(kz_watch), updates=1)
    inc = events[-1].incident
    upd = render.update_message(
        kz_watch,
        events[1].incident,
        key="k2",
        reasons=["scope grew: region KZ-R0"],
        held=[["kind changed"], ["cause firmed up"]],
    )
    end = render.end_message(kz_watch, inc, key="k3")
    note = render.notice_message(
        kz_watch, Notice(time=T0, level=NoticeLevel.error, source="ioda", message="IODA down <5xx>"), key="k4"
    )
    for m in (upd, end, note):
        assert_block_kit(m.blocks)
        assert m.text
    assert "scope grew: region KZ-R0" in upd.plain() and "2 batched by the 6/hour limit" in upd.plain()
    assert "Recovered" in end.text and "lasted 18 min" in end.plain()
    assert "IODA down &lt;5xx&gt;" in note.blocks[0]["text"]["text"]  # mrkdwn control characters escaped
    unblock = service_block(kz_watch).model_copy(update={"end": T0 + timedelta(days=2, hours=5), "status": "resolved"})
    assert render.end_message(kz_watch, unblock, key="k5").text.startswith(
        "Unblocked: Service blocked in KZ ended after 5 h 00 min"
    )


def test_ooni_and_ioda_links_follow_the_scope(kz_watch):
    blocked = service_block(kz_watch, asn=9198)
    link = render.ooni_link(kz_watch, blocked)
    assert "probe_asn=AS9198" in link and "test_name=whatsapp" in link and "probe_cc=KZ" in link
    tele2 = network_outage(kz_watch)
    assert "/asn/48503?from=" in render.ioda_link(tele2)


def test_mentions():
    assert render.mention_markup("@here") == "<!here>"
    assert render.mention_markup("@channel") == "<!channel>"
    assert render.mention_markup("S0123ABCD") == "<!subteam^S0123ABCD>"
    assert render.mention_markup("subteam^S0123ABCD") == "<!subteam^S0123ABCD>"
    assert render.mention_markup("U024BE7LH") == "<@U024BE7LH>"
    assert render.mention_markup(None) is None


def test_routing_rules(kz_watch):
    r = kz_watch.alerts
    assert routing.alertable(r, nationwide(kz_watch)) == (True, "")
    ok, why = routing.alertable(r, network_outage(kz_watch))
    assert not ok and "AS48503" in why
    assert routing.alertable(r.model_copy(update={"per_provider_asns": [48503]}), network_outage(kz_watch))[0]
    assert routing.alertable(r.model_copy(update={"per_provider": True}), network_outage(kz_watch))[0]
    assert not routing.alertable(r.model_copy(update={"min_severity": 10_000}), nationwide(kz_watch))[0]
    assert routing.critical(r, nationwide(kz_watch)) and not routing.critical(r, service_block(kz_watch))
    times = [T0 + timedelta(minutes=10 * i) for i in range(6)]
    assert routing.over_update_limit(r, times, T0 + timedelta(minutes=55))
    assert not routing.over_update_limit(r, times, T0 + timedelta(minutes=65))


def test_chart_is_a_png_of_the_signals(kz_watch):
    inc = nationwide(kz_watch)
    anomalies, obs = anomalies_and_observations(kz_watch, inc)
    png = incident_chart(kz_watch, inc, anomalies, obs)
    assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    # without anomalies the country series of the incident's signals are drawn, baseline from before the start
    assert incident_chart(kz_watch, inc, [], obs).startswith(b"\x89PNG")
    assert incident_chart(kz_watch, inc, [], []) is None
