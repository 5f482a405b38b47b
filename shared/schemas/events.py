"""Job events: progress messages and metrics, as in the OpenAI fine-tuning events list."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import uuid4

from pydantic import BaseModel, Field


class EventLevel(StrEnum):
    """Severity."""

    INFO = "info"
    WARN = "warn"
    ERROR = "error"


class EventType(StrEnum):
    """`message` for text, `metrics` for numbers (loss curves)."""

    MESSAGE = "message"
    METRICS = "metrics"


class Event(BaseModel):
    """One job event. A `status` key in `data` moves the job to that status when recorded."""

    id: str = Field(default_factory=lambda: f"ftevent-{uuid4().hex}", description="Unique event id.")
    job_id: str = Field(description="Job this event belongs to.")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC), description="When it happened.")
    level: EventLevel = Field(EventLevel.INFO, description="Severity.")
    type: EventType = Field(EventType.MESSAGE, description="Message or metrics.")
    message: str = Field("", description="Human-readable text.")
    data: dict[str, Any] = Field(default_factory=dict, description="Metrics or structured details.")
