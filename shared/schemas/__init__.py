"""Pydantic contracts for job records, events and task payloads."""

from .events import Event, EventLevel, EventType
from .jobs import TERMINAL_STATUSES, JobKind, JobPublic, JobStatus
from .tasks import PingPayload, TaskPayload, TaskResult

__all__ = [
    "TERMINAL_STATUSES",
    "Event",
    "EventLevel",
    "EventType",
    "JobKind",
    "JobPublic",
    "JobStatus",
    "PingPayload",
    "TaskPayload",
    "TaskResult",
]
