"""A small stored history for report and audit-query tests, written with the store's own functions.

Observations come from the simulator (two days around KZ election day); incidents, anomalies,
alerts, gaps and audit entries are built from the simulator's labels, as the pipeline would
record them, so these tests do not depend on the detectors' tuning.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pollwatch import audit, outbox, store
from pollwatch.models import (
    Alert,
    AlertState,
    Anomaly,
    AnomalyEvent,
    Direction,
    Entity,
    Evidence,
    Family,
    Gap,
    Incident,
    IncidentEvent,
    IncidentKind,
    Scope,
    stable_id,
)
from pollwatch.playbook import Watch
from pollwatch.simulate import election_day_events, simulate
from pollwatch.timeutil import parse_time

FAMILY = {
    IncidentKind.service_block: Family.service,
    IncidentKind.circumvention_block: Family.circumvention,
    IncidentKind.throttling: Family.performance,
}


def populate(watch: Watch) -> dict:
    """Write one simulated election day and its incidents; returns the range and the incidents."""
    day = parse_time(watch.at_offset(timedelta(0)))  # a plain aware UTC datetime
    since, until = day - timedelta(days=1), day + timedelta(days=1)
    scenario = simulate(watch, since, until, election_day_events(watch), seed=3)
    obs = [o for o in scenario.observations if o.source == "ioda" or o.asn is None]
    incidents: list[Incident] = []
    with store.session_scope() as s:
        store.upsert_observations(s, obs)
        audit.record_run_start(
            s,
            watch=watch.name,
            flow_run_id="run-1",
            flow="replay",
            deployment=None,
            parameters={"watch": watch.name},
            playbook_hash=watch.content_hash,
            at=since,
        )
        audit.record_observations(
            s,
            watch=watch.name,
            source="ioda",
            observations=[o for o in obs if o.source == "ioda"],
            window=(since, until),
            at=since,
        )
        for lab in scenario.labels:
            is_conn = lab.kind in (
                IncidentKind.nationwide_outage,
                IncidentKind.regional_outage,
                IncidentKind.network_outage,
            )
            entity = Entity(
                country=watch.country,
                region=(lab.regions or [None])[0] if lab.kind is IncidentKind.regional_outage else None,
                asn=lab.asns[0] if lab.kind is IncidentKind.network_outage else None,
            )
            anomaly = Anomaly(
                id=stable_id("a", lab.id),
                watch=watch.name,
                source="ioda" if is_conn else "ooni",
                signal="bgp" if is_conn else "service_failure_rate",
                family=FAMILY.get(lab.kind, Family.connectivity),
                entity=entity,
                direction=Direction.drop if is_conn else Direction.rise,
                start=lab.start,
                end=lab.end,
                detected_at=lab.start + timedelta(minutes=10),
                expected=1000.0,
                observed=30.0,
                depth=0.97,
                severity=5820.0,
                points=12,
                evidence={"threshold": 0.5},
            )
            providers = [watch.provider_name(a) for a in lab.asns]
            inc = Incident(
                id=stable_id("i", lab.id),
                watch=watch.name,
                country=watch.country,
                family=anomaly.family,
                kind=lab.kind,
                scope=Scope(
                    regions=lab.regions,
                    asns=lab.asns,
                    providers=providers,
                    services=lab.services,
                    signals=[anomaly.signal],
                    share=1.0 if lab.kind is IncidentKind.nationwide_outage else 0.2,
                ),
                start=lab.start,
                end=lab.end,
                detected_at=anomaly.detected_at,
                updated_at=lab.end,
                status="resolved",
                severity=5820.0,
                depth=0.97,
                cause=lab.cause,
                cause_confidence=0.8,
                evidence=[
                    Evidence(
                        name="onset_on_hour",
                        supports=lab.cause,
                        weight=0.3,
                        detail=f"started at {lab.start:%H:%M} UTC, on the local hour",
                        numbers={"minute": 0},
                    )
                ],
                anomaly_ids=[anomaly.id],
            )
            incidents.append(inc)
            store.save_anomalies(s, [anomaly])
            store.save_incidents(s, [inc])
            audit.record_anomaly_event(
                s, event=AnomalyEvent(tick=anomaly.detected_at, change="opened", anomaly=anomaly), watch_cfg=watch
            )
            audit.record_incident_event(
                s,
                event=IncidentEvent(tick=inc.detected_at, change="opened", reasons=["new"], incident=inc),
                watch_cfg=watch,
            )
            for ev, at in (("start", inc.detected_at), ("end", inc.end)):
                alert = Alert(
                    id=stable_id(inc.id, ev),
                    watch=watch.name,
                    incident_id=inc.id,
                    event=ev,
                    sequence=1,
                    destination=watch.alerts.channel,
                    idempotency_key=f"{inc.id}:{ev}",
                    created_at=at,
                    text=f"[{ev}] {lab.kind.value} <script>alert(1)</script>",
                )
                outbox.enqueue_alerts(s, [alert])
                # both audited
                outbox.mark_alert(s, alert.id, AlertState.sent, remote_ref="slack:C123:1560060000.000100")
        store.add_gaps(
            s,
            watch.name,
            [
                Gap(
                    source="ioda",
                    signal="telescope",
                    entity=watch.country,
                    start=day + timedelta(hours=2),
                    end=day + timedelta(hours=3),
                    reason="no data from the source for this series",
                )
            ],
        )
        audit.record_override(
            s,
            watch=watch.name,
            incident_id=incidents[0].id,
            who="alice",
            why="power company confirmed a grid failure",
            changes={"cause": ["unknown", "power_outage"]},
            at=until,
        )
        audit.record_run_end(
            s,
            watch=watch.name,
            flow_run_id="run-1",
            flow="replay",
            state="Completed",
            summary={"incidents": len(incidents)},
            at=until,
        )
    return {"since": since, "until": until, "incidents": incidents, "day": day}


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=timezone.utc)


def template_store(tmp_dir, watch: Watch) -> tuple[str, dict]:
    """Populate a store once in `tmp_dir` and return its file path (copy it into each test's store)."""
    import os

    path = os.path.join(str(tmp_dir), "template.sqlite")
    url = f"sqlite:///{path}"
    old = os.environ.get("POLLWATCH_DATABASE_URL")
    os.environ["POLLWATCH_DATABASE_URL"] = url
    try:
        info = populate(watch)
    finally:
        store.dispose_engines()  # closes connections, so the WAL is checkpointed into the file
        if old is None:
            os.environ.pop("POLLWATCH_DATABASE_URL", None)
        else:
            os.environ["POLLWATCH_DATABASE_URL"] = old
    return path, info


def use_template(path: str, isolated_url: str) -> None:
    """Copy the template store to the test's isolated store location before anything opens it."""
    import shutil
    from pathlib import Path

    target = Path(isolated_url.split("///", 1)[1])
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)


_TEMPLATE: dict[str, tuple[str, dict]] = {}


@pytest.fixture(scope="session")
def report_template(tmp_path_factory):
    """One populated store per test session; tests copy it with `use_template`."""
    from pollwatch.playbook import load_watch
    from tests.conftest import KZ_WATCH

    # Cached in the module, so test modules importing this fixture share one build per process.
    if "store" not in _TEMPLATE:
        _TEMPLATE["store"] = template_store(tmp_path_factory.mktemp("report-store"), load_watch(KZ_WATCH))
    return _TEMPLATE["store"]


@pytest.fixture
def stored(report_template, isolated_store):
    """The populated store copied into this test's isolated store; returns the range and incidents."""
    path, info = report_template
    use_template(path, isolated_store)
    return info
