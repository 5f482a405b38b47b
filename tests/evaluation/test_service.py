"""The `evaluation.run` task end to end: before and after a short LoRA fine-tune, then the stored comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from services.evaluation.comparison import COMPARISON, compare_jobs
from services.evaluation.results import PREDICTIONS, RESULTS
from shared.queue import TaskName, send_task
from shared.schemas import JobKind, JobStatus, TaskPayload
from shared.storage import ObjectKind, get_bytes, get_store, object_key, put_bytes, upload_dir

USER = "alice"
ANSWER = "The answer is yes."  # the learnable task: one fixed reply, which a random model never produces
TRAIN = [f"Is {a} plus {b} a number?" for a in range(6) for b in range(4)]
HELD_OUT = [f"Is {a} plus {b} a number?" for a in range(7, 9) for b in range(5, 8)]
METRICS = ["bleu", "chrf", "bleu-4", "rouge", "exact_match", "normalized_match", "perplexity"]


def _records(questions: list[str]) -> bytes:
    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": ANSWER}]} for q in questions]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _finetune_lora(model_dir: Path, out: Path) -> None:
    """A few dozen steps of plain peft LoRA on the task, standing in for a training job."""
    from peft import LoraConfig, get_peft_model

    from services.evaluation.loading import load_for_evaluation
    from services.evaluation.prompts import encode_exchange, render_exchange

    base, tok = load_for_evaluation(str(model_dir))
    examples = []
    for question in TRAIN:
        prompt_ids, answer_ids = encode_exchange(
            tok,
            *render_exchange(
                tok, [{"role": "user", "content": question}], {"role": "assistant", "content": ANSWER}, None
            ),
        )
        examples.append((prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids))
    torch.manual_seed(0)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for step in range(40):
        batch = [examples[(step * 4 + i) % len(examples)] for i in range(4)]
        width = max(len(ids) for ids, _ in batch)
        pad = [width - len(ids) for ids, _ in batch]
        input_ids = torch.tensor([ids + [tok.pad_token_id] * p for (ids, _), p in zip(batch, pad, strict=True)])
        labels = torch.tensor([lab + [-100] * p for (_, lab), p in zip(batch, pad, strict=True)])
        mask = torch.tensor([[1] * len(ids) + [0] * p for (ids, _), p in zip(batch, pad, strict=True)])
        model(input_ids=input_ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out)


def _evaluate(config: dict[str, Any]) -> str:
    from shared.db import session_scope
    from shared.db.jobs import create_job, ensure_user

    with session_scope() as session:
        ensure_user(session, USER)
        job_id = create_job(session, user_id=USER, kind=JobKind.EVALUATION, config=config).id
    send_task(TaskName.EVALUATION_RUN, TaskPayload(job_id=job_id, user_id=USER, config=config))
    return job_id


def _job_status(job_id: str) -> str:
    from shared.db import Job, session_scope

    with session_scope() as session:
        return session.get(Job, job_id).status


def test_finetune_improvement_shows_in_stored_comparison(embedded: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    store = get_store()
    dataset_key = object_key(USER, ObjectKind.DATASETS, "held-out", "records.jsonl")
    put_bytes(store, dataset_key, _records(HELD_OUT))
    base_config = {"model_name_or_path": str(tiny_model_dir), "eval_dataset": [dataset_key], "metrics": METRICS}
    base_config |= {"max_new_tokens": 12, "batch_size": 4, "model_label": "base"}
    before = _evaluate(base_config)

    _finetune_lora(tiny_model_dir, tmp_path / "adapter")
    upload_dir(store, object_key(USER, ObjectKind.JOBS, "ftjob-demo", "final/"), tmp_path / "adapter")
    tuned_config = base_config | {
        "adapter_name_or_path": f"ft:{tiny_model_dir}:{USER}:ftjob-demo",
        "model_label": "tuned",
    }
    after = _evaluate(tuned_config)

    for job_id in (before, after):
        assert _job_status(job_id) == JobStatus.SUCCEEDED
        results = json.loads(get_bytes(store, object_key(USER, ObjectKind.JOBS, job_id, RESULTS)))
        assert {"bleu", "chrf", "bleu-4", "rouge-l", "exact_match", "perplexity"} <= set(results["metrics"])
        lines = get_bytes(store, object_key(USER, ObjectKind.JOBS, job_id, PREDICTIONS)).decode().splitlines()
        assert len(lines) == len(HELD_OUT)
        assert {"prompt", "reference", "prediction", "scores"} <= set(json.loads(lines[0]))

    comparison = compare_jobs(store, user_id=USER, job_ids=[before, after], comparison_id="cmp-1")
    stored = json.loads(get_bytes(store, object_key(USER, ObjectKind.EVALUATIONS, "cmp-1", COMPARISON)))
    assert stored == json.loads(comparison.model_dump_json())
    assert stored["models"] == ["base", "tuned"]
    assert stored["metrics"]["bleu"]["base"] < 5 and stored["metrics"]["bleu"]["tuned"] > 90
    assert stored["deltas"]["exact_match"]["tuned"] > 0.9
    assert stored["deltas"]["perplexity"]["tuned"] < 0  # lower is better
    assert stored["wins"]["tuned"]["better"] == len(HELD_OUT)
    assert stored["samples"][0]["outputs"]["tuned"] == ANSWER


def test_failed_run_marks_the_job_failed(embedded: Path, tiny_model_dir: Path) -> None:
    other = object_key("mallory", ObjectKind.DATASETS, "secret", "records.jsonl")
    put_bytes(get_store(), other, _records(HELD_OUT[:1]))
    config = {"model_name_or_path": str(tiny_model_dir), "eval_dataset": [other], "metrics": ["bleu"]}
    with pytest.raises(PermissionError, match="is not under 'users/alice/'"):
        _evaluate(config)
    from shared.db import Job, session_scope

    with session_scope() as session:
        job = session.query(Job).one()
        assert job.status == JobStatus.FAILED and job.error["code"] == "evaluation_failed"


def test_cancel_request_stops_the_job_between_phases(embedded: Path, tiny_model_dir: Path) -> None:
    from shared.db import JobEvent, session_scope
    from shared.db.jobs import create_job, ensure_user, request_cancel
    from shared.storage import ObjectNotFoundError

    key = object_key(USER, ObjectKind.DATASETS, "tiny", "records.jsonl")
    put_bytes(get_store(), key, _records(HELD_OUT[:2]))
    config = {"model_name_or_path": str(tiny_model_dir), "eval_dataset": [key], "metrics": ["bleu", "perplexity"]}
    config |= {"max_new_tokens": 2}
    with session_scope() as session:
        ensure_user(session, USER)
        job_id = create_job(session, user_id=USER, kind=JobKind.EVALUATION, config=config).id
    request_cancel(job_id)
    result = send_task(TaskName.EVALUATION_RUN, TaskPayload(job_id=job_id, user_id=USER, config=config)).get()
    assert result["status"] == JobStatus.CANCELLED == _job_status(job_id)
    with session_scope() as session:
        messages = [e.message for e in session.query(JobEvent).filter_by(job_id=job_id)]
    assert any(m.startswith("generated 2 outputs") for m in messages)
    assert not any(m.startswith("perplexity") for m in messages)  # stopped before the next phase
    with pytest.raises(ObjectNotFoundError):  # a cancelled job publishes no results
        get_bytes(get_store(), object_key(USER, ObjectKind.JOBS, job_id, RESULTS))


@pytest.mark.slow
def test_evaluation_chained_after_real_training(embedded: Path, tiny_model_dir: Path) -> None:
    """training.run then evaluation.run in one chain: the evaluation finds the adapter by its `ft:` name."""
    from shared.queue import send_chain
    from tests.training.conftest import WORDS, create_training_job, task_records, write_prepared_dataset

    train_config = {"model_name_or_path": str(tiny_model_dir), "max_steps": 10, "learning_rate": 0.03}
    train_config |= {"per_device_train_batch_size": 4}
    train_id = create_training_job(train_config, user_id=USER)
    write_prepared_dataset(user_id=USER, job_id=train_id, model_dir=tiny_model_dir, records=task_records(WORDS))
    key = object_key(USER, ObjectKind.DATASETS, "words", "records.jsonl")
    put_bytes(get_store(), key, "".join(json.dumps(r) + "\n" for r in task_records(WORDS)).encode())
    base_config = {"model_name_or_path": str(tiny_model_dir), "eval_dataset": [key], "model_label": "base"}
    base_config |= {"metrics": ["perplexity"]}  # teacher-forced: moves after a few steps, no generation cost
    before = _evaluate(base_config)
    tuned_config = base_config | {
        "adapter_name_or_path": f"ft:{tiny_model_dir}:{USER}:{train_id}",
        "model_label": "tuned",
    }
    from shared.db import session_scope
    from shared.db.jobs import create_job

    with session_scope() as session:
        after = create_job(session, user_id=USER, kind=JobKind.EVALUATION, config=tuned_config).id
    send_chain(
        [
            (TaskName.TRAINING_RUN, TaskPayload(job_id=train_id, user_id=USER, config=train_config)),
            (TaskName.EVALUATION_RUN, TaskPayload(job_id=after, user_id=USER, config=tuned_config)),
        ]
    )
    assert _job_status(after) == JobStatus.SUCCEEDED
    comparison = compare_jobs(get_store(), user_id=USER, job_ids=[before, after], comparison_id="cmp-chain")
    assert comparison.deltas["perplexity"]["tuned"] < 0
