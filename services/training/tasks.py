"""Celery tasks on the `training` queue: thin wrappers over `runner` and `lease`."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import worker_ready

from shared.events import answer_ping
from shared.queue import Queue, TaskName
from shared.schemas import TaskPayload

from .lease import start_lease_checker
from .runner import run_training_job


@shared_task(name=TaskName.TRAINING_PING)
def ping(payload: dict[str, Any]) -> dict[str, Any]:
    """Health probe: records a 'pong' event for the payload's job id."""
    return answer_ping(Queue.TRAINING, payload)


@shared_task(name=TaskName.TRAINING_RUN)
def run(payload: dict[str, Any]) -> dict[str, Any]:
    """Train one job (TaskPayload; `config` is a TrainJobConfig dict). Idempotent on the job id."""
    task = TaskPayload.model_validate(payload)
    return run_training_job(job_id=task.job_id, user_id=task.user_id, config=task.config).model_dump()


@worker_ready.connect
def _check_leases_in_training_workers(sender: Any = None, **_: Any) -> None:
    # Every worker process imports this module (the gateway's included); only training workers requeue.
    queues = {q.name for q in getattr(getattr(sender, "task_consumer", None), "queues", None) or []}
    if Queue.TRAINING.value in queues:
        start_lease_checker()
