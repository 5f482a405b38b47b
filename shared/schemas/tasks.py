"""Payloads that cross the queue: ids and object keys, never bulk data."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class TaskPayload(BaseModel):
    """Common envelope: who asked, for which job, with which config."""

    job_id: str = Field(description="Job record this task works for; outputs go under its prefix.")
    user_id: str = Field(description="Owner; every object key is under this user's prefix.")
    config: dict[str, Any] = Field(default_factory=dict, description="The job's validated config.")


class PingPayload(BaseModel):
    """Health probe sent through a service queue."""

    job_id: str = Field(description="Job id the resulting event is recorded under.")
    message: str = Field("ping", description="Echoed back in the event.")


class TaskResult(BaseModel):
    """What a task returns: a status and where its outputs are."""

    job_id: str = Field(description="The job.")
    status: str = Field(description="Final job status.")
    outputs: dict[str, str] = Field(default_factory=dict, description="Named object keys the task wrote.")
    metrics: dict[str, float] = Field(default_factory=dict, description="Final numbers.")
