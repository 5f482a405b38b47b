"""An evaluation job as the worker runs it: read inputs from the store, evaluate, store the results."""

from __future__ import annotations

from shared.db.jobs import is_cancel_requested
from shared.events import emit
from shared.modelkit import check_model_access
from shared.schemas import JobStatus, TaskResult
from shared.schemas.evaluation import EvalConfig
from shared.storage import ObjectStore, get_bytes, is_owned_key, user_prefix

from .dataset import combine, parse_records
from .loading import load_for_evaluation, resolve_model_name
from .metrics.multiple_choice import Question, parse_questions
from .results import store_outcome
from .runner import evaluate


def _read_owned(store: ObjectStore, user_id: str, key: str, field: str) -> bytes:
    # Object keys arrive from clients: a user may only evaluate on data under their own prefix.
    if not is_owned_key(key, user_id):
        raise PermissionError(f"{field}: {key!r} is not under {user_prefix(user_id)!r}")
    return get_bytes(store, key)


def _questions(store: ObjectStore, user_id: str, key: str | None, field: str) -> list[Question] | None:
    if key is None:
        return None
    return parse_questions(_read_owned(store, user_id, key, field), key)


class EvaluationCancelled(RuntimeError):
    """Someone asked the job to stop; raised between phases."""


def _report_phase(job_id: str, message: str) -> None:
    emit(job_id, message)
    if is_cancel_requested(job_id):
        raise EvaluationCancelled(f"evaluation {job_id} cancelled after: {message}")


def run_evaluation_job(store: ObjectStore, *, user_id: str, job_id: str, config: EvalConfig) -> TaskResult:
    """Evaluate `config`'s model on its object-key inputs; results go to `users/{user}/jobs/{job_id}/`."""
    check_model_access(resolve_model_name(config.model_name_or_path), user_id, "model_name_or_path")
    if config.adapter_name_or_path:
        check_model_access(resolve_model_name(config.adapter_name_or_path), user_id, "adapter_name_or_path")
    parts = [parse_records(_read_owned(store, user_id, key, "eval_dataset"), key) for key in config.eval_dataset]
    model, tokenizer = load_for_evaluation(config.model_name_or_path, config.adapter_name_or_path)
    outcome = evaluate(
        config,
        model=model,
        tokenizer=tokenizer,
        eval_set=combine(parts, config.max_samples),
        job_id=job_id,
        mc_questions=_questions(store, user_id, config.mc_dataset, "mc_dataset") or [],
        mc_dev=_questions(store, user_id, config.mc_dev_dataset, "mc_dev_dataset"),
        on_phase=lambda message: _report_phase(job_id, message),
    )
    keys = store_outcome(store, user_id=user_id, job_id=job_id, outcome=outcome)
    return TaskResult(job_id=job_id, status=JobStatus.SUCCEEDED.value, outputs=keys, metrics=outcome.results.metrics)
