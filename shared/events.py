"""Publishing job events from any service: they travel on the `events` queue to the gateway's recorder."""

from __future__ import annotations

import os
import socket
from typing import Any

from .queue import Queue, TaskName, send_task
from .schemas import Event, EventLevel, EventType, JobStatus, PingPayload


def emit(
    job_id: str,
    message: str = "",
    *,
    level: EventLevel = EventLevel.INFO,
    type: EventType = EventType.MESSAGE,
    data: dict[str, Any] | None = None,
) -> Event:
    """Publish one event for `job_id` and return it."""
    event = Event(job_id=job_id, level=level, type=type, message=message, data=data or {})
    send_task(TaskName.EVENTS_RECORD, event)
    return event


def emit_metrics(job_id: str, metrics: dict[str, Any], message: str = "") -> Event:
    """Publish a metrics event (one point of a live curve)."""
    return emit(job_id, message, type=EventType.METRICS, data=metrics)


def emit_status(job_id: str, status: JobStatus, message: str = "", **data: Any) -> Event:
    """Publish a status change; the recorder moves the job record to `status`."""
    level = EventLevel.ERROR if status is JobStatus.FAILED else EventLevel.INFO
    return emit(job_id, message or f"job {status.value}", level=level, data={"status": status.value, **data})


def worker_name() -> str:
    """`host:pid`, recorded with status changes so a stuck job can be traced to its worker."""
    return f"{socket.gethostname()}:{os.getpid()}"


def answer_ping(queue: Queue, payload: dict[str, Any]) -> dict[str, Any]:
    """What every service's `<queue>.ping` task does: record that this worker received the probe."""
    ping = PingPayload.model_validate(payload)
    worker = worker_name()
    emit(
        ping.job_id,
        f"pong from {queue.value} ({worker}): {ping.message}",
        data={"service": queue.value, "worker": worker},
    )
    return {"service": queue.value, "worker": worker}
