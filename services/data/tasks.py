"""Celery tasks on the `data` queue: validate the payload, call a plain function, report through events."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery import shared_task

from shared.events import answer_ping, emit, emit_status
from shared.modelkit.loader import STORE_SCHEME
from shared.queue import Queue, TaskName
from shared.schemas import EventLevel, JobStatus, TaskPayload
from shared.schemas.datasets import DataCheckConfig, PrepareConfig
from shared.storage import ObjectKind, get_store, is_owned_key, object_key, put_bytes, upload_file, user_prefix

from .checks import clean_dataset, validate_dataset
from .paraphrase_plan import plan_paraphrases
from .prepare import prepare_dataset
from .validation import DataValidationError


@shared_task(name=TaskName.DATA_PING)
def ping(payload: dict[str, Any]) -> dict[str, Any]:
    """Health probe: records a 'pong' event for the payload's job id."""
    return answer_ping(Queue.DATA, payload)


def check_store_inputs(user_id: str, dataset_dir: str | None) -> None:
    """Workers read only the owner's stored objects, never paths on the worker's own disk."""
    if dataset_dir is None or not (
        dataset_dir.startswith(STORE_SCHEME) and is_owned_key(dataset_dir[len(STORE_SCHEME) :], user_id)
    ):
        raise PermissionError(
            f"dataset_dir must be a store:// prefix under {user_prefix(user_id)!r} (upload the folder first)"
        )


def _problems_event(job_id: str, report: Any) -> None:
    if report.dropped:
        listed = "; ".join(
            f"{p.file}:{p.line if p.line is not None else p.index} {p.field or ''} {p.reason}"
            for p in report.problems[:5]
        )
        emit(
            job_id,
            f"dropped {sum(report.dropped.values())} records ({listed})",
            level=EventLevel.WARN,
            data={"dropped": report.dropped},
        )
    if report.paraphrases_dropped:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(report.paraphrases_dropped.items()))
        emit(
            job_id,
            f"left out {sum(report.paraphrases_dropped.values())} paraphrases ({reasons})",
            level=EventLevel.WARN,
            data={"paraphrases_dropped": report.paraphrases_dropped},
        )


@contextmanager
def _failing_job(job_id: str) -> Iterator[None]:
    """Mark the job failed, naming the problem, when reading or preparing its data raises."""
    try:
        yield
    except DataValidationError as exc:
        _fail(job_id, "invalid_data", f"invalid data: {exc}", exc.problem.field or "dataset")
        raise
    except (ValueError, FileNotFoundError, KeyError, PermissionError) as exc:
        _fail(job_id, "data_preparation_failed", f"data preparation failed: {exc}", "dataset")
        raise


@shared_task(name=TaskName.DATA_PREPARE)
def prepare(payload: dict[str, Any]) -> dict[str, Any]:
    """Prepare a dataset (TaskPayload; `config` is a PrepareConfig dict) and return its manifest.

    Idempotent: the dataset id is a content hash, so a redelivered task reuses what it wrote.
    """
    task = TaskPayload.model_validate(payload)
    config = PrepareConfig.model_validate(task.config)
    check_store_inputs(task.user_id, config.dataset_dir)
    emit_status(task.job_id, JobStatus.VALIDATING_FILES, "preparing dataset")
    with _failing_job(task.job_id):
        manifest = prepare_dataset(
            config,
            store=get_store(),
            user_id=task.user_id,
            job_id=task.job_id,
            notify=lambda message, data: emit(task.job_id, message, data=data),
        )
    _problems_event(task.job_id, manifest.report)
    result = manifest.model_dump(mode="json")
    _succeed_if_data_job(task.job_id, {"dataset_id": manifest.dataset_id, "splits": manifest.splits})
    return result


@shared_task(name=TaskName.DATA_PLAN_PARAPHRASES)
def plan(payload: dict[str, Any]) -> dict[str, Any]:
    """Write the paraphrase requests for `data.prepare`'s records (TaskPayload; `config` is a PrepareConfig dict).

    The requests go to `users/{user}/jobs/{job_id}/paraphrase/requests.jsonl` for `inference.generate`.
    Idempotent: the same inputs overwrite the same object with the same lines.
    """
    task = TaskPayload.model_validate(payload)
    config = PrepareConfig.model_validate(task.config)
    check_store_inputs(task.user_id, config.dataset_dir)
    emit_status(task.job_id, JobStatus.VALIDATING_FILES, "planning paraphrases")
    with _failing_job(task.job_id):
        key, count = plan_paraphrases(
            config,
            store=get_store(),
            user_id=task.user_id,
            job_id=task.job_id,
            notify=lambda message, data: emit(task.job_id, message, data=data),
        )
    return {"key": key, "requests": count}


def _fail(job_id: str, code: str, message: str, param: str) -> None:
    emit_status(job_id, JobStatus.FAILED, message, error={"code": code, "message": message, "param": param})


def _succeed_if_data_job(job_id: str, result: dict[str, Any]) -> None:
    """Finish a stand-alone data job; inside a chain the next service's task moves the job on instead."""
    from shared.db import Job, session_scope
    from shared.schemas import JobKind

    with session_scope() as session:
        job = session.get(Job, job_id)
        is_data_job = job is not None and job.kind == JobKind.DATA.value
    if is_data_job:
        emit_status(job_id, JobStatus.SUCCEEDED, "data job done", result=result)


@shared_task(name=TaskName.DATA_VALIDATE)
def validate(payload: dict[str, Any]) -> dict[str, Any]:
    """Validate datasets (TaskPayload; `config` is a DataCheckConfig dict); return the report and statistics.

    Both are also stored at `users/{user}/jobs/{job_id}/validation.json`.
    """
    task = TaskPayload.model_validate(payload)
    config = DataCheckConfig.model_validate(task.config)
    check_store_inputs(task.user_id, config.dataset_dir)
    store = get_store()
    try:
        report, stats = validate_dataset(config, store=store, user_id=task.user_id)
    except DataValidationError as exc:
        _fail(task.job_id, "invalid_data", f"invalid data: {exc}", exc.problem.field or "dataset")
        raise
    result = {"report": report.model_dump(mode="json"), "stats": stats.model_dump(mode="json")}
    key = object_key(task.user_id, ObjectKind.JOBS, task.job_id, "validation.json")
    put_bytes(store, key, json.dumps(result, ensure_ascii=False).encode(), "application/json")
    _problems_event(task.job_id, report)
    emit(task.job_id, f"validated {report.records_read} records", data={"valid": report.records_valid, "key": key})
    _succeed_if_data_job(task.job_id, {"validation": key})
    return result


@shared_task(name=TaskName.DATA_CLEAN)
def clean(payload: dict[str, Any]) -> dict[str, Any]:
    """Validate and clean datasets (TaskPayload; `config` is a DataCheckConfig dict).

    Writes canonical JSONL per dataset under `users/{user}/jobs/{job_id}/cleaned/` and returns the report and
    the keys written.
    """
    task = TaskPayload.model_validate(payload)
    config = DataCheckConfig.model_validate(task.config)
    check_store_inputs(task.user_id, config.dataset_dir)
    store = get_store()
    with tempfile.TemporaryDirectory(prefix="tuneflow-clean-") as tmp:
        try:
            report, files = clean_dataset(config, store=store, user_id=task.user_id, out_dir=Path(tmp))
        except DataValidationError as exc:
            _fail(task.job_id, "invalid_data", f"invalid data: {exc}", exc.problem.field or "dataset")
            raise
        keys = {}
        for name, path in files.items():
            keys[name] = object_key(task.user_id, ObjectKind.JOBS, task.job_id, f"cleaned/{path.name}")
            upload_file(store, keys[name], path)
    _problems_event(task.job_id, report)
    emit(task.job_id, f"cleaned {report.records_read} records", data={"cleaning": report.cleaning})
    _succeed_if_data_job(task.job_id, {"cleaned": keys})
    return {"report": report.model_dump(mode="json"), "outputs": keys}
