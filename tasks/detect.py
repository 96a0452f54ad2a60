"""Detect stage: one task run advances every series' detector through the given ticks."""

from __future__ import annotations

from datetime import datetime

from prefect import task
from prefect.cache_policies import NO_CACHE

from pollwatch.detect import DetectorState, DetectResult, detect
from pollwatch.models import Observation
from pollwatch.playbook import Watch


@task(name="detect", cache_policy=NO_CACHE)
def detect_task(
    watch: Watch, state: DetectorState, ticks: list[datetime], observations: list[Observation]
) -> DetectResult:
    """Judge every newly visible observation against its series' expectation."""
    return detect(watch, state, ticks, observations)
