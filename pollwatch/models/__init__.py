"""Domain models passed between pollwatch's stages.

These are plain pydantic models: what a Prefect task takes and returns, what the interchange
formats (docs/formats.md) serialize, and what the store persists. The store's SQL tables live in
`pollwatch.store`; they carry these models' fields but are not these classes.

Modules: `common` (UTC times, ids, bounds on outside text), `observations` (what goes into the detectors:
observations, gaps, observatories' records, notices, baselines), `incidents` (what comes out: anomalies,
incidents and their events), `alerts` (the outbox's unit). Import them from here: `from pollwatch.models import X`.
"""

from pollwatch.models.alerts import Alert, AlertState
from pollwatch.models.common import (
    MAX_HASH,
    MAX_LABEL,
    MAX_MESSAGE,
    MAX_NAME,
    MAX_REQUEST,
    iso,
    no_nul,
    outside_message,
    stable_id,
    utc,
)
from pollwatch.models.incidents import (
    SEVERITY_BANDS,
    Anomaly,
    AnomalyEvent,
    Cause,
    Direction,
    Episode,
    Evidence,
    Family,
    Incident,
    IncidentEvent,
    IncidentKind,
    Pattern,
    Scope,
    severity_band,
    severity_index,
)
from pollwatch.models.observations import (
    Baseline,
    Corroboration,
    Entity,
    Gap,
    Notice,
    NoticeLevel,
    Observation,
    Provenance,
    entity_key,
    series_key,
)

__all__ = [
    "MAX_HASH",
    "MAX_LABEL",
    "MAX_MESSAGE",
    "MAX_NAME",
    "MAX_REQUEST",
    "SEVERITY_BANDS",
    "Alert",
    "AlertState",
    "Anomaly",
    "AnomalyEvent",
    "Baseline",
    "Cause",
    "Corroboration",
    "Direction",
    "Entity",
    "Episode",
    "Evidence",
    "Family",
    "Gap",
    "Incident",
    "IncidentEvent",
    "IncidentKind",
    "Notice",
    "NoticeLevel",
    "Observation",
    "Pattern",
    "Provenance",
    "Scope",
    "entity_key",
    "iso",
    "no_nul",
    "outside_message",
    "series_key",
    "severity_band",
    "severity_index",
    "stable_id",
    "utc",
]
