"""Celery tasks on the `inference` queue."""

from __future__ import annotations

from collections import Counter
from typing import Any

from celery import shared_task

from shared.db.jobs import is_cancel_requested
from shared.events import answer_ping, emit, emit_status, worker_name
from shared.queue import Queue, TaskName
from shared.schemas import JobStatus, TaskPayload
from shared.schemas.generation import GenerateConfig
from shared.storage import ObjectNotFoundError, get_store


@shared_task(name=TaskName.INFERENCE_PING)
def ping(payload: dict[str, Any]) -> dict[str, Any]:
    """Health probe: records a 'pong' event for the payload's job id."""
    return answer_ping(Queue.INFERENCE, payload)


@shared_task(name=TaskName.INFERENCE_GENERATE)
def generate(payload: dict[str, Any]) -> dict[str, Any]:
    """Generate a response per line of a stored requests JSONL (TaskPayload; `config` is a GenerateConfig dict).

    Writes `users/{user}/jobs/{job_id}/{responses_name}` and returns its key and counts. Idempotent: a
    redelivered task overwrites its own responses.
    """
    from .batch import GenerationCancelled, run_generate_job  # torch and the engine: only when generating

    task = TaskPayload.model_validate(payload)
    config = GenerateConfig.model_validate(task.config)
    job_id = task.job_id
    if is_cancel_requested(job_id):
        emit_status(job_id, JobStatus.CANCELLED, "cancelled before generation started")
        raise GenerationCancelled(f"job {job_id} was cancelled")
    started = {"model": config.model, "adapter": config.adapter, "worker": worker_name()}
    emit(job_id, f"generating with {config.model}", data=started)

    def progress(done: int, total: int) -> bool:
        emit(job_id, f"generated {done}/{total} responses", data={"done": done, "total": total})
        return not is_cancel_requested(job_id)

    try:
        key, responses = run_generate_job(
            config, store=get_store(), user_id=task.user_id, job_id=job_id, progress=progress
        )
    except GenerationCancelled as exc:
        emit_status(job_id, JobStatus.CANCELLED, f"generation cancelled: {exc}")
        raise
    except PermissionError as exc:
        _fail(job_id, "permission_denied", exc)
        raise
    except (ValueError, FileNotFoundError, ObjectNotFoundError) as exc:
        _fail(job_id, "generation_failed", exc)
        raise
    reasons = Counter(r.finish_reason for r in responses)
    emit(job_id, f"generated {len(responses)} responses", data={"key": key, "finish_reasons": dict(reasons)})
    return {"key": key, "responses": len(responses), "finish_reasons": dict(reasons)}


def _fail(job_id: str, code: str, exc: Exception) -> None:
    # Messages start with the config field at fault ("adapter: ..."), as the ownership checks write them.
    head, sep, _ = str(exc).partition(":")
    param = head if sep and head in GenerateConfig.model_fields else None
    message = f"generation failed: {exc}"
    emit_status(job_id, JobStatus.FAILED, message, error={"code": code, "message": message, "param": param})
