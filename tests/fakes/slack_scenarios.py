"""Incident stories for the Slack tests: incidents, their events as outbox alerts, and observations.

`alerts_for` builds alerts with the alert stage's pollwatch.alerts.build_alerts: one alert per incident event,
keyed `(watch, incident, event, version)`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pollwatch.alerts import build_alerts
from pollwatch.models import (
    Alert,
    Anomaly,
    Cause,
    Direction,
    Entity,
    Evidence,
    Family,
    Incident,
    IncidentEvent,
    IncidentKind,
    Observation,
    Scope,
)
from pollwatch.playbook import Watch

T0 = datetime(2019, 6, 9, 5, 0, tzinfo=timezone.utc)  # 11:00 in Almaty on election day


def nationwide(watch: Watch, *, inc_id: str = "kz-nationwide-1", severity: float = 9000.0) -> Incident:
    return Incident(
        id=inc_id,
        watch=watch.name,
        country="KZ",
        family=Family.connectivity,
        kind=IncidentKind.nationwide_outage,
        scope=Scope(
            asns=[9198, 35168, 29355],
            providers=["Kazakhtelecom", "Transtelecom", "Kcell"],
            regions=["KZ-ALA", "KZ-AST"],
            signals=["bgp", "active_probing", "telescope"],
            share=0.6,
            network_types=["fixed", "mobile"],
        ),
        start=T0,
        detected_at=T0 + timedelta(minutes=10),
        updated_at=T0 + timedelta(minutes=10),
        severity=severity,
        depth=0.8,
        cause=Cause.government_directed,
        cause_confidence=0.82,
        evidence=[
            Evidence(
                name="onset_on_hour",
                supports=Cause.government_directed,
                weight=0.3,
                detail="onset at 11:00 local, on the hour",
            ),
            Evidence(
                name="many_asns",
                supports=Cause.government_directed,
                weight=0.4,
                detail="3 independent ASNs dropped within 4 minutes",
            ),
            Evidence(
                name="signals_agree",
                supports=Cause.government_directed,
                weight=0.2,
                detail="BGP, active probing and telescope agree",
            ),
            Evidence(
                name="no_power", supports=Cause.power_outage, weight=0.05, detail="no regional power event reported"
            ),
        ],
        anomaly_ids=["an-bgp-kz", "an-ap-kz"],
    )


def service_block(watch: Watch, *, inc_id: str = "kz-whatsapp-1", asn: int | None = None) -> Incident:
    return Incident(
        id=inc_id,
        watch=watch.name,
        country="KZ",
        family=Family.service,
        kind=IncidentKind.service_block,
        scope=Scope(asns=[asn] if asn else [9198, 29355], services=["whatsapp"], signals=["service_failure_rate"]),
        start=T0 + timedelta(days=2),
        detected_at=T0 + timedelta(days=2, hours=1),
        updated_at=T0 + timedelta(days=2, hours=1),
        severity=2000.0,
        depth=0.7,
        cause=Cause.government_directed,
        cause_confidence=0.6,
        evidence=[
            Evidence(
                name="dns",
                supports=Cause.government_directed,
                weight=0.5,
                detail="DNS answers for web.whatsapp.com inconsistent on 2 ASNs",
            )
        ],
    )


def network_outage(watch: Watch, *, asn: int = 48503, inc_id: str = "kz-tele2-1") -> Incident:
    return Incident(
        id=inc_id,
        watch=watch.name,
        country="KZ",
        family=Family.connectivity,
        kind=IncidentKind.network_outage,
        scope=Scope(asns=[asn], providers=[watch.provider_name(asn)], signals=["bgp"], share=0.2),
        start=T0 + timedelta(hours=3),
        detected_at=T0 + timedelta(hours=3, minutes=10),
        updated_at=T0 + timedelta(hours=3, minutes=10),
        severity=1500.0,
        depth=0.9,
        cause=Cause.technical,
        cause_confidence=0.55,
    )


def story(
    inc: Incident, updates: int = 2, step: timedelta = timedelta(minutes=5), end: bool = True
) -> list[IncidentEvent]:
    """An incident's events: opened, `updates` updates (scope grows, cause firms up), resolved."""
    events = [IncidentEvent(tick=inc.detected_at, change="opened", incident=inc)]
    cur = inc
    tick = inc.detected_at
    for i in range(updates):
        tick = tick + step
        cur = cur.model_copy(
            update={
                "version": cur.version + 1,
                "updated_at": tick,
                "severity": cur.severity * 1.3,
                "scope": cur.scope.model_copy(update={"regions": cur.scope.regions + [f"KZ-R{i}"]}),
                "cause_confidence": min(0.95, cur.cause_confidence + 0.03),
            },
            deep=True,
        )
        events.append(IncidentEvent(tick=tick, change="updated", reasons=[f"scope grew: region KZ-R{i}"], incident=cur))
    if end:
        tick = tick + step
        cur = cur.model_copy(
            update={
                "version": cur.version + 1,
                "updated_at": tick,
                "end": tick - timedelta(minutes=2),
                "status": "resolved",
            },
            deep=True,
        )
        events.append(IncidentEvent(tick=tick, change="resolved", reasons=["all signals back to normal"], incident=cur))
    return events


def alerts_for(watch: Watch, events: list[IncidentEvent]) -> list[Alert]:
    """Outbox alerts for incident events (the alert stage's keying: watch, incident, event, version)."""
    return build_alerts(watch, events)


def anomalies_and_observations(watch: Watch, inc: Incident) -> tuple[list[Anomaly], list[Observation]]:
    """Two country-level series (bgp, active probing) that drop 80% during the incident, 5-minute steps."""
    anomalies, obs = [], []
    for aid, signal, expected in (("an-bgp-kz", "bgp", 1500.0), ("an-ap-kz", "active_probing", 900.0)):
        anomalies.append(
            Anomaly(
                id=aid,
                watch=watch.name,
                source="ioda",
                signal=signal,
                family=Family.connectivity,
                entity=Entity(country="KZ"),
                direction=Direction.drop,
                start=inc.start,
                detected_at=inc.detected_at,
                expected=expected,
                observed=expected * 0.2,
                depth=0.8,
                severity=4000.0 if signal == "bgp" else 3000.0,
            )
        )
        t = inc.start - timedelta(hours=6)
        while t < inc.start + timedelta(hours=3):
            inside = inc.start <= t < inc.start + timedelta(hours=1)
            value = expected * (0.2 if inside else 1.0) + int(t.timestamp()) % 7
            obs.append(Observation(time=t, source="ioda", signal=signal, country="KZ", value=value))
            t += timedelta(minutes=5)
    return anomalies, obs
