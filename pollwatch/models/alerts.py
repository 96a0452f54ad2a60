"""The outbox's unit: one notification about an incident event (or an operator notice) to one destination."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class AlertState(StrEnum):
    pending = "pending"  # in the outbox, not delivered yet
    sent = "sent"  # done: posted, or held or skipped by routing (its remote_ref says which)
    failed = "failed"  # the last attempt failed; still undelivered, tried again in order on the next run


class Alert(BaseModel):
    """One notification about an incident event to one destination (kept in the outbox)."""

    id: str
    watch: str
    incident_id: str
    event: str  # start | update | end
    sequence: int
    destination: str
    idempotency_key: str
    created_at: datetime
    text: str
    payload: dict[str, Any] = Field(default_factory=dict)
    state: AlertState = AlertState.pending
    attempts: int = 0
