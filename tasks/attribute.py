"""Attribute stage: a cause, a confidence and the evidence for each incident event."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from pollwatch.attribute import AttributionContext, attribute
from pollwatch.models import Anomaly, AnomalyEvent, Incident, IncidentEvent
from pollwatch.playbook import Watch


@task(name="attribute", cache_policy=NO_CACHE)
def attribute_task(
    watch: Watch,
    events: list[IncidentEvent],
    known: dict[str, Incident],
    anomalies: list[Anomaly | AnomalyEvent],
    context: AttributionContext | None = None,
) -> list[IncidentEvent]:
    """Attribute each incident event (earlier and neighbouring incidents in `context`);
    overrides recorded by responders win.
    """
    return attribute(watch, events, known, anomalies, context)
