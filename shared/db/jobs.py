"""Job-record operations several services need: create, cancel request and cancel check."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from ..schemas import JobKind, JobStatus
from .models import Job, User
from .session import session_scope

LOCAL_USER = "local"  # the single user of embedded mode


def new_job_id(kind: JobKind) -> str:
    """`ftjob-...` for training (as OpenAI names them), `<kind>job-...` otherwise."""
    prefix = "ftjob" if kind is JobKind.TRAINING else f"{kind.value}job"
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def ensure_user(session: Session, user_id: str, email: str | None = None) -> User:
    """Return the user, creating it if absent (embedded mode's `local` user)."""
    user = session.get(User, user_id)
    if user is None:
        user = User(id=user_id, email=email or f"{user_id}@localhost")
        session.add(user)
        session.flush()
    return user


def create_job(
    session: Session, *, user_id: str, kind: JobKind, config: dict[str, Any], model: str | None = None
) -> Job:
    """Insert a queued job record and return it."""
    job = Job(
        id=new_job_id(kind), user_id=user_id, kind=kind.value, status=JobStatus.QUEUED.value, model=model, config=config
    )
    session.add(job)
    session.flush()
    return job


def request_cancel(job_id: str) -> bool:
    """Ask a job to stop at its next step boundary; False if it has already finished."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise KeyError(f"no job {job_id!r}")
        if job.status in {s.value for s in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)}:
            return False
        job.cancel_requested = True
        return True


def is_cancel_requested(job_id: str) -> bool:
    """Whether someone asked `job_id` to stop (workers poll this between steps)."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        return bool(job and job.cancel_requested)


def stop_reason(job_id: str, worker: str) -> str | None:
    """Why `worker`'s run of `job_id` must stop now, or None: "cancelled" (someone asked), or "lease_lost"
    (its lease ran out and another worker took the job over: two runs must never write the same job).
    """
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None:
            return None
        if job.cancel_requested:
            return "cancelled"
        return "lease_lost" if job.worker not in (None, worker) else None
