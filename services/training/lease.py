"""Requeueing training jobs whose worker died: a running job renews its lease with heartbeat events, and
a job whose lease (`heartbeat_at`) is older than `job_lease_s` goes back on the queue.

The check runs inside every training worker (a daemon thread started when the worker is ready, see
`tasks.py`), so no extra scheduler process is needed; the update is guarded by the old status and
heartbeat, so two workers checking at once requeue a job only once. The requeued task resumes from the
job's latest stored checkpoint.

A task takes its job with `claim_job`, which refuses while another worker's lease is live: Redis hands a
dead worker's unacknowledged message out again after `visibility_timeout_s`, often after the lease check
requeued the job, and that second copy must not start a second run beside the first.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update

from shared.db import Job
from shared.db.session import session_scope
from shared.events import emit, worker_name
from shared.queue import TaskName, send_task
from shared.schemas import TERMINAL_STATUSES, EventLevel, JobKind, JobStatus, TaskPayload
from shared.settings import get_settings

log = logging.getLogger(__name__)


def requeue_expired_jobs(now: datetime | None = None) -> list[str]:
    """Send `training.run` again for every running training job whose lease has expired; return their ids."""
    now = now or datetime.now(UTC)
    lease_s = get_settings().job_lease_s
    cutoff = now - timedelta(seconds=lease_s)
    requeued: list[tuple[str, str, dict]] = []
    with session_scope() as session:
        stale = session.scalars(
            select(Job).where(Job.kind == JobKind.TRAINING.value, Job.status == JobStatus.RUNNING.value)
        ).all()
        for job in stale:
            beat = job.heartbeat_at or job.started_at or job.created_at
            if beat.tzinfo is None:  # SQLite returns naive datetimes; the tables store UTC
                beat = beat.replace(tzinfo=UTC)
            if beat >= cutoff:
                continue
            claimed = session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == JobStatus.RUNNING.value, Job.heartbeat_at == job.heartbeat_at)
                .values(status=JobStatus.QUEUED.value, heartbeat_at=now)
            )
            if claimed.rowcount:
                requeued.append((job.id, job.user_id, dict(job.config)))
    for job_id, user_id, config in requeued:
        emit(
            job_id, f"no heartbeat for {lease_s}s: requeued", level=EventLevel.WARN, data={"requeued_by": worker_name()}
        )
        send_task(TaskName.TRAINING_RUN, TaskPayload(job_id=job_id, user_id=user_id, config=config))
    return [job_id for job_id, _, _ in requeued]


def claim_job(job_id: str, worker: str, now: datetime | None = None) -> bool:
    """Take `job_id`'s lease for `worker` unless another worker holds a live one; True if taken.

    A job is free when it is not running yet (queued, or just prepared by the data service) or its lease
    has expired. One guarded update, so of two deliveries that arrive together only one takes the job.
    """
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(seconds=get_settings().job_lease_s)
    with session_scope() as session:
        claimed = session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.status.not_in([s.value for s in TERMINAL_STATUSES]),
                or_(Job.status != JobStatus.RUNNING.value, Job.heartbeat_at.is_(None), Job.heartbeat_at < cutoff),
            )
            .values(status=JobStatus.RUNNING.value, heartbeat_at=now, worker=worker)
        )
        return bool(claimed.rowcount)


@contextlib.contextmanager
def lease_renewed(job_id: str) -> Iterator[None]:
    """Send a heartbeat for `job_id` every `worker_heartbeat_s` seconds while the block runs.

    The whole job renews its lease, not only the training process: fetching the dataset, restoring a
    checkpoint and uploading the final model can each outlast `job_lease_s` on a big model.
    """
    stop = threading.Event()
    every_s = get_settings().worker_heartbeat_s
    worker = worker_name()

    def beat() -> None:
        while not stop.wait(every_s):
            with contextlib.suppress(Exception):  # a broker hiccup must not end the renewals; the next beat retries
                emit(job_id, "heartbeat", data={"heartbeat": True, "worker": worker})

    thread = threading.Thread(target=beat, name=f"lease-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def start_lease_checker(every_s: float | None = None) -> threading.Event:
    """Run `requeue_expired_jobs` every `every_s` seconds (default: half the lease) in a daemon thread.

    Returns:
        An event; set it to stop the thread.
    """
    stop = threading.Event()
    interval = every_s or get_settings().job_lease_s / 2

    def loop() -> None:
        while not stop.wait(interval):
            try:
                requeue_expired_jobs()
            except Exception:  # a database or broker blip must not end this worker's checks for good
                log.exception("lease check failed; retrying in %.0f s", interval)

    threading.Thread(target=loop, name="training-lease-checker", daemon=True).start()
    return stop
