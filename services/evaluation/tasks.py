"""Celery tasks on the `evaluation` queue."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from pydantic import ValidationError

from shared.events import answer_ping, emit_metrics, emit_status, worker_name
from shared.queue import Queue, TaskName
from shared.schemas import JobStatus, TaskPayload
from shared.schemas.evaluation import EvalConfig
from shared.storage import get_store

from .job import EvaluationCancelled, run_evaluation_job


@shared_task(name=TaskName.EVALUATION_PING)
def ping(payload: dict[str, Any]) -> dict[str, Any]:
    """Health probe: records a 'pong' event for the payload's job id."""
    return answer_ping(Queue.EVALUATION, payload)


@shared_task(name=TaskName.EVALUATION_RUN)
def run(payload: dict[str, Any]) -> dict[str, Any]:
    """Evaluate a model for an evaluation job; idempotent: a redelivery overwrites the job's own results."""
    task = TaskPayload.model_validate(payload)
    emit_status(task.job_id, JobStatus.RUNNING, worker=worker_name())
    try:
        config = EvalConfig.model_validate(task.config)
        result = run_evaluation_job(get_store(), user_id=task.user_id, job_id=task.job_id, config=config)
    except EvaluationCancelled as exc:
        emit_status(task.job_id, JobStatus.CANCELLED, str(exc))
        return {"job_id": task.job_id, "status": JobStatus.CANCELLED.value}
    except ValidationError as exc:
        error = exc.errors()[0]
        param = ".".join(str(p) for p in error["loc"]) or None
        message = f"invalid evaluation config: {error['msg']}"
        emit_status(
            task.job_id, JobStatus.FAILED, message, error={"code": "invalid_config", "message": message, "param": param}
        )
        raise
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        emit_status(task.job_id, JobStatus.FAILED, message, error={"code": "evaluation_failed", "message": message})
        raise
    emit_metrics(task.job_id, result.metrics, "evaluation finished")
    emit_status(task.job_id, JobStatus.SUCCEEDED, result={"metrics": result.metrics, "outputs": result.outputs})
    return result.model_dump()
