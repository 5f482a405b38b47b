"""Celery tasks on the `export` queue: validate, call the plain export functions, report."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from shared.events import answer_ping, emit, emit_status, worker_name
from shared.queue import Queue, TaskName
from shared.schemas import JobStatus, TaskPayload, TaskResult

from .config import parse_export_config
from .errors import ExportError
from .manifest import MANIFEST_NAME
from .publish import export_to_store


@shared_task(name=TaskName.EXPORT_PING)
def ping(payload: dict[str, Any]) -> dict[str, Any]:
    """Health probe: records a 'pong' event for the payload's job id."""
    return answer_ping(Queue.EXPORT, payload)


@shared_task(name=TaskName.EXPORT_RUN)
def run(payload: dict[str, Any]) -> dict[str, Any]:
    """Export the job's model to `users/{user}/exports/{job_id}/` (idempotent: a rerun replaces it)."""
    task = TaskPayload.model_validate(payload)
    job_id = task.job_id
    emit_status(job_id, JobStatus.RUNNING, "export started", worker=worker_name())
    try:
        config = parse_export_config(task.config)
        prefix, manifest = export_to_store(
            config, user_id=task.user_id, export_id=job_id, progress=lambda message: emit(job_id, message)
        )
    except ExportError as exc:
        # The user's problem, not the worker's: report it and do not retry.
        emit_status(job_id, JobStatus.FAILED, str(exc), error={"code": "export_failed", "message": str(exc)})
        return TaskResult(job_id=job_id, status=JobStatus.FAILED.value).model_dump()
    except Exception as exc:
        emit_status(job_id, JobStatus.FAILED, f"export crashed: {type(exc).__name__}: {exc}")
        raise
    metrics = {c.name: c.value for c in manifest.verification if c.value is not None}
    if manifest.quantization:
        metrics["perplexity_change"] = manifest.quantization.perplexity_change
    result = TaskResult(
        job_id=job_id,
        status=JobStatus.SUCCEEDED.value,
        outputs={"export": prefix, "manifest": prefix + MANIFEST_NAME},
        metrics=metrics,
    )
    emit_status(job_id, JobStatus.SUCCEEDED, "export verified and stored", result=result.model_dump())
    return result.model_dump()
