"""Classify stage: anomalies grouped into incidents with a kind and a scope."""

from __future__ import annotations

from datetime import datetime

from prefect import task
from prefect.cache_policies import NO_CACHE

from pollwatch.classify import ClassifyResult, GroupState, classify
from pollwatch.models import AnomalyEvent
from pollwatch.playbook import Watch


@task(name="classify", cache_policy=NO_CACHE)
def classify_task(watch: Watch, state: GroupState, ticks: list[datetime], events: list[AnomalyEvent]) -> ClassifyResult:
    """Fold anomaly events into incident events (opened, updated, resolved)."""
    return classify(watch, state, ticks, events)
