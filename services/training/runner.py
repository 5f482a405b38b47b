"""`run_training_job`: everything `training.run` does, as a plain function.

The job runs once per job id: a redelivered or requeued task finds the job's latest stored checkpoint
and continues from it; a job already finished is left alone. Outputs go under `users/{user}/jobs/{job}/`:

    dataset/manifest.json       written by the data service (input)
    checkpoints/checkpoint-N/   the latest checkpoint, while the job runs
    final/                      adapter or full weights + tokenizer (from_pretrained loads it)
    logs/trainer_log.jsonl, logs/tensorboard/, loss.png, metrics.json, config.json
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shared.db import Job
from shared.db.jobs import is_cancel_requested, stop_reason
from shared.db.session import session_scope
from shared.events import emit, emit_status, worker_name
from shared.modelkit import check_model_access, resolve_model_source
from shared.modelkit.loader import FINE_TUNED_PREFIX
from shared.schemas import TERMINAL_STATUSES, EventLevel, JobStatus, TaskResult
from shared.schemas.training import TrainJobConfig
from shared.settings import get_settings
from shared.storage import (
    ObjectKind,
    delete_prefix,
    download_file,
    download_prefix,
    get_bytes,
    get_store,
    object_key,
    upload_dir,
    upload_file,
)

from .checkpoints import checkpoints_prefix, restore_latest
from .launch import run_training_process
from .lease import claim_job, lease_renewed
from .preflight import ModelShape, PreflightError, available_bytes, check_fits
from .recipe import OUTCOME_FILE, Outcome, RunSpec

DATASET_MANIFEST = "dataset/manifest.json"


def fine_tuned_model_name(base: str, user_id: str, job_id: str) -> str:
    """The name inference and export address the result by: `ft:Qwen2.5-0.5B:alice:ftjob-...`.

    Only the base's last path part is kept, as OpenAI names hold a short base name, never a folder.
    """
    short = base.rstrip("/").rsplit("/", 1)[-1] or base
    return f"{FINE_TUNED_PREFIX}{short}:{user_id}:{job_id}"


def run_training_job(*, job_id: str, user_id: str, config: dict[str, Any]) -> TaskResult:
    """Train `job_id` to completion (resuming if it ran before) and publish its status and outputs."""
    status = _current_status(job_id)
    if status in TERMINAL_STATUSES:
        return TaskResult(job_id=job_id, status=status.value)  # a duplicate delivery of a finished job
    if status is not None and not claim_job(job_id, worker_name()):
        return TaskResult(job_id=job_id, status=JobStatus.RUNNING.value)  # a duplicate: another worker runs it
    try:
        train_config = TrainJobConfig.model_validate(config)
    except ValidationError as exc:
        return _fail(job_id, "invalid_config", str(exc), param=_first_field(exc))
    try:
        check_model_access(train_config.model_name_or_path, user_id, "model_name_or_path")
    except PermissionError as exc:
        return _fail(job_id, "permission_denied", str(exc), param="model_name_or_path")
    if is_cancel_requested(job_id):  # cancelled while it waited in the queue
        emit_status(job_id, JobStatus.CANCELLED, "cancelled before it started")
        return TaskResult(job_id=job_id, status=JobStatus.CANCELLED.value)
    emit_status(job_id, JobStatus.RUNNING, worker=worker_name())
    try:
        with lease_renewed(job_id):
            return _run(job_id, user_id, train_config)
    except PreflightError as exc:
        return _fail(job_id, "insufficient_memory", str(exc), param=exc.param)
    except Exception as exc:  # noqa: BLE001 - a job left "running" would be requeued forever by the lease check
        return _fail(job_id, "training_failed", f"{type(exc).__name__}: {exc}")


def _run(job_id: str, user_id: str, config: TrainJobConfig) -> TaskResult:
    store = get_store()
    job_prefix = object_key(user_id, ObjectKind.JOBS, job_id)
    workdir = (get_settings().home / "training" / job_id).resolve()
    shutil.rmtree(workdir, ignore_errors=True)  # the store, not a leftover local folder, is the truth
    workdir.mkdir(parents=True)

    dataset_dir = _download_dataset(store, job_prefix, workdir / "dataset")
    model_dir = resolve_model_source(config.model_name_or_path)
    if not config.skip_preflight:
        _preflight(config, model_dir, dataset_dir)
    resume_from = restore_latest(store, job_prefix, workdir) or _explicit_checkpoint(config, workdir)
    if resume_from is not None:
        emit(job_id, f"resuming from {resume_from.name}", data={"resume_from": resume_from.name})

    spec = RunSpec(
        job_id=job_id,
        job_prefix=job_prefix,
        config=config.model_dump(mode="json"),
        model_dir=model_dir,
        dataset_dir=str(dataset_dir),
        workdir=str(workdir),
        resume_from=str(resume_from) if resume_from else None,
        worker=worker_name(),
    )
    run_training_process(spec, config.num_processes)

    outcome = Outcome.model_validate_json((workdir / OUTCOME_FILE).read_text())
    if outcome.status == "cancelled":
        emit_status(job_id, JobStatus.CANCELLED, "cancelled at a step boundary")
        return TaskResult(job_id=job_id, status=JobStatus.CANCELLED.value)
    if outcome.status == "lease_lost" or stop_reason(job_id, spec.worker) == "lease_lost":
        # Another worker requeued and took the job (this one's heartbeats stopped arriving in time): it
        # publishes the result, this run publishes nothing.
        emit(job_id, "another worker took this job over; this run stopped without publishing", level=EventLevel.WARN)
        return TaskResult(job_id=job_id, status=JobStatus.RUNNING.value)

    outputs = _upload_outputs(store, job_prefix, workdir, config)
    delete_prefix(store, checkpoints_prefix(job_prefix))  # the final model supersedes them
    model_name = fine_tuned_model_name(config.model_name_or_path, user_id, job_id)
    result = {"model": f"store://{outputs['final']}", "metrics": outcome.metrics, "outputs": outputs}
    emit_status(job_id, JobStatus.SUCCEEDED, fine_tuned_model=model_name, result=result)
    return TaskResult(job_id=job_id, status=JobStatus.SUCCEEDED.value, outputs=outputs, metrics=outcome.metrics)


def _download_dataset(store, job_prefix: str, folder: Path) -> Path:  # type: ignore[no-untyped-def]
    """Fetch the manifest the data service left for this job and the Parquet splits it names."""
    key = job_prefix + DATASET_MANIFEST
    try:
        manifest = json.loads(get_bytes(store, key))
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"no prepared dataset at {key}: run data.prepare for this job first") from exc
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    for split_key in manifest["splits"].values():
        download_file(store, split_key, folder / Path(split_key).name)
    return folder


def _preflight(config: TrainJobConfig, model_dir: str, dataset_dir: Path) -> None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from transformers import AutoConfig

    manifest = json.loads((dataset_dir / "manifest.json").read_text())
    train = pq.read_table(dataset_dir / Path(manifest["splits"]["train"]).name, columns=["input_ids"])
    longest = pc.max(pc.list_value_length(train["input_ids"])).as_py() or config.cutoff_len
    shape = ModelShape.from_config(AutoConfig.from_pretrained(model_dir))
    check_fits(shape, config, longest, available_bytes())


def _explicit_checkpoint(config: TrainJobConfig, workdir: Path) -> Path | None:
    """A `store://` checkpoint named in the config (used only when the job has none of its own)."""
    source = config.resume_from_checkpoint
    if not isinstance(source, str) or not source.startswith("store://"):
        return None
    folder = workdir / "output" / "checkpoint-resume"
    if not download_prefix(get_store(), source.removeprefix("store://").rstrip("/") + "/", folder):
        raise FileNotFoundError(f"resume_from_checkpoint {source!r} holds no files")
    return folder


def _upload_outputs(store, job_prefix: str, workdir: Path, config: TrainJobConfig) -> dict[str, str]:  # type: ignore[no-untyped-def]
    (workdir / "config.json").write_text(config.model_dump_json(indent=2))
    outputs = {"final": job_prefix + "final/", "logs": job_prefix + "logs/"}
    upload_dir(store, outputs["final"], workdir / "final")
    upload_dir(store, outputs["logs"], workdir / "logs")
    for name in ("metrics.json", "loss.png", "config.json"):
        if (workdir / name).exists():
            upload_file(store, job_prefix + name, workdir / name)
            outputs[name.split(".")[0]] = job_prefix + name
    return outputs


def _current_status(job_id: str) -> JobStatus | None:
    with session_scope() as session:
        job = session.get(Job, job_id)
        return JobStatus(job.status) if job else None


def _fail(job_id: str, code: str, message: str, param: str | None = None) -> TaskResult:
    emit_status(
        job_id, JobStatus.FAILED, message[-2000:], error={"code": code, "message": message[-2000:], "param": param}
    )
    return TaskResult(job_id=job_id, status=JobStatus.FAILED.value)


def _first_field(exc: ValidationError) -> str | None:
    errors = exc.errors()
    return str(errors[0]["loc"][0]) if errors and errors[0]["loc"] else None
