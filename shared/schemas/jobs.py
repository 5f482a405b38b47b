"""Job records, shaped like the OpenAI fine-tuning API where it fits."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JobStatus(StrEnum):
    """Lifecycle of every job (OpenAI fine-tuning job states)."""

    VALIDATING_FILES = "validating_files"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class JobKind(StrEnum):
    """Which service runs the job."""

    DATA = "data"
    TRAINING = "training"
    EVALUATION = "evaluation"
    EXPORT = "export"


class JobError(BaseModel):
    """Why a job failed, as the OpenAI API reports it."""

    code: str = Field(description="Machine-readable error code.")
    message: str = Field(description="What went wrong, for a person.")
    param: str | None = Field(None, description="The config field at fault, if one is.")


class JobPublic(BaseModel):
    """A job as clients see it."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="Job id (`ftjob-...` style).")
    object: str = Field("fine_tuning.job", description="OpenAI object type.")
    kind: JobKind = Field(description="Service that runs the job.")
    user_id: str = Field(description="Owner.")
    status: JobStatus = Field(description="Current lifecycle state.")
    model: str | None = Field(None, description="Base model.")
    fine_tuned_model: str | None = Field(None, description="Name of the resulting model, once succeeded.")
    config: dict[str, Any] = Field(default_factory=dict, description="Resolved job config, secrets masked.")
    error: JobError | None = Field(None, description="Set when the job failed.")
    created_at: datetime = Field(description="When the job was submitted.")
    started_at: datetime | None = Field(None, description="When a worker picked it up.")
    finished_at: datetime | None = Field(None, description="When it reached a terminal state.")
