"""Writing events into the database and applying the status changes they carry."""

from __future__ import annotations

from sqlalchemy.orm import Session

from shared.db import Job, JobEvent, utcnow
from shared.schemas import TERMINAL_STATUSES, Event, JobStatus


def record_event(session: Session, event: Event) -> bool:
    """Store `event` once (a redelivered event is ignored) and move its job's status; True if new."""
    if session.get(JobEvent, event.id) is not None:
        return False
    session.add(
        JobEvent(
            id=event.id,
            job_id=event.job_id,
            created_at=event.created_at,
            level=event.level.value,
            type=event.type.value,
            message=event.message,
            data=event.data,
        )
    )
    job = session.get(Job, event.job_id)
    if job is not None:
        _apply(job, event)
    return True


def _apply(job: Job, event: Event) -> None:
    worker = event.data.get("worker")
    if event.data.get("heartbeat"):
        if job.worker is not None and worker is not None and str(worker) != job.worker:
            return  # a late beat from a worker that lost the job neither renews its lease nor takes the job back
        job.heartbeat_at = event.created_at
    if worker is not None:
        job.worker = str(worker)
    status = event.data.get("status")
    if status is None or JobStatus(job.status) in TERMINAL_STATUSES:
        return  # a late event never revives a finished job
    new = JobStatus(status)
    job.status = new.value
    if new is JobStatus.RUNNING:
        job.started_at = job.started_at or event.created_at
        job.heartbeat_at = event.created_at
        job.attempts += 1
    if new in TERMINAL_STATUSES:
        job.finished_at = utcnow()
    if new is JobStatus.FAILED:
        job.error = event.data.get("error") or {"code": "failed", "message": event.message}
    if new is JobStatus.SUCCEEDED:
        job.result = event.data.get("result", job.result)
        job.fine_tuned_model = event.data.get("fine_tuned_model", job.fine_tuned_model)
