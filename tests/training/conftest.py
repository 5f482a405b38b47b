"""Fixtures for the training tests: a learnable tiny task, prepared as the data service would, and a job row."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

# A small learnable task: answer with the word backwards. Held-out words test generalisation of the format.
WORDS = [
    "apple",
    "river",
    "stone",
    "cloud",
    "maple",
    "tiger",
    "lemon",
    "piano",
    "candle",
    "orange",
    "silver",
    "garden",
    "window",
    "forest",
    "planet",
]
HELD_OUT = ["rocket", "bridge", "yellow"]


def task_records(words: list[str]) -> list[dict[str, Any]]:
    """Chat records whose answer is the reversed word."""
    return [
        {"messages": [{"role": "user", "content": f"reverse {w}"}, {"role": "assistant", "content": w[::-1]}]}
        for w in words
    ]


@pytest.fixture(scope="session")
def task_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 2-layer, 64-dim tiny Qwen2, with the task's words in its tokenizer corpus."""
    from shared.modelkit import TinyModelSpec, build_tiny_model

    corpus = tmp_path_factory.mktemp("corpus") / "words.txt"
    corpus.write_text("\n".join(f"reverse {w} {w[::-1]}" for w in WORDS + HELD_OUT))
    return build_tiny_model(TinyModelSpec(arch="qwen2", corpus=[corpus]), tmp_path_factory.mktemp("task-model"))


def prepare_payload(
    *, user_id: str, job_id: str, model_dir: Path, records: list[dict], stage: str = "sft", **prepare: Any
) -> dict[str, Any]:
    """Upload `records` as the user's dataset folder; return the `data.prepare` payload for `job_id`."""
    import tempfile

    from services.data.sources import upload_dataset_folder
    from shared.storage import get_store

    folder = Path(tempfile.mkdtemp(prefix="tuneflow-task-"))
    with (folder / "task.jsonl").open("w") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    layout = (
        {"formatting": "openai", "columns": {"messages": "messages"}}
        if stage == "sft"
        else {"columns": {"prompt": "text"}}
    )
    (folder / "dataset_info.json").write_text(json.dumps({"task": {"file_name": "task.jsonl", **layout}}))
    config = {
        "model_name_or_path": str(model_dir),
        "stage": stage,
        "dataset": "task",
        "dataset_dir": upload_dataset_folder(get_store(), user_id, folder),
        "cleaning": {"dedup": "none"},
        **prepare,
    }
    return {"job_id": job_id, "user_id": user_id, "config": config}


def write_prepared_dataset(
    *, user_id: str, job_id: str, model_dir: Path, records: list[dict], stage: str = "sft", **prepare: Any
) -> dict[str, Any]:
    """Run the data service's `data.prepare` for `job_id` on `records`, as the CLI's chain does; return the manifest."""
    from shared.queue import TaskName, send_task

    payload = prepare_payload(
        user_id=user_id, job_id=job_id, model_dir=model_dir, records=records, stage=stage, **prepare
    )
    return send_task(TaskName.DATA_PREPARE, payload).get()


def create_training_job(config: dict[str, Any], user_id: str = "local") -> str:
    """Insert a queued training job row and return its id."""
    from shared.db import session_scope
    from shared.db.jobs import create_job, ensure_user
    from shared.schemas import JobKind

    with session_scope() as session:
        ensure_user(session, user_id)
        return create_job(session, user_id=user_id, kind=JobKind.TRAINING, config=config).id


def job_row(job_id: str) -> dict[str, Any]:
    """The job's row as a dict."""
    from shared.db import Job, session_scope

    with session_scope() as session:
        job = session.get(Job, job_id)
        return {c.name: getattr(job, c.name) for c in Job.__table__.columns}


def set_running(job_id: str, heartbeat: datetime) -> None:
    """Mark the job running with its last heartbeat at `heartbeat` (e.g. a lease that ran out)."""
    from shared.db import Job, session_scope

    with session_scope() as session:
        job = session.get(Job, job_id)
        job.status, job.heartbeat_at = "running", heartbeat


def run_training(
    model_dir: Path, records: list[dict], prepare: dict[str, Any] | None = None, **overrides: Any
) -> tuple[str, dict[str, Any]]:
    """Prepare `records` for a new job and run `training.run` through the queue; return (job id, result)."""
    from shared.queue import TaskName, send_task

    config = {"model_name_or_path": str(model_dir), **overrides}
    job_id = create_training_job(config)
    write_prepared_dataset(user_id="local", job_id=job_id, model_dir=model_dir, records=records, **(prepare or {}))
    result = send_task(TaskName.TRAINING_RUN, {"job_id": job_id, "user_id": "local", "config": config}).get()
    return job_id, result


def answer_nll(model, tokenizer, records: list[dict]) -> float:  # type: ignore[no-untyped-def]
    """Mean negative log-likelihood per answer token of `records`' assistant turns (teacher-forced)."""
    import torch

    total, count = 0.0, 0
    model.eval()
    for rec in records:
        prompt = tokenizer.apply_chat_template(rec["messages"][:-1], add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(rec["messages"], tokenize=False)
        p_len = len(tokenizer(prompt)["input_ids"])
        ids = torch.tensor([tokenizer(full)["input_ids"]])
        labels = ids.clone()
        labels[:, :p_len] = -100
        with torch.no_grad():
            loss = model(input_ids=ids, labels=labels).loss
        n = int((labels[:, 1:] != -100).sum())
        total += float(loss) * n
        count += n
    return total / count


def read_trainer_log(job_id: str, user_id: str = "local") -> list[dict[str, Any]]:
    """The job's stored trainer_log.jsonl, training lines only."""
    from shared.storage import ObjectKind, get_bytes, get_store, object_key

    raw = get_bytes(get_store(), object_key(user_id, ObjectKind.JOBS, job_id, "logs/trainer_log.jsonl")).decode()
    return [r for r in map(json.loads, raw.splitlines()) if "loss" in r]


def stored_checkpoint_steps(job_id: str, user_id: str = "local") -> list[int]:
    """Steps of the job's complete checkpoints in the store, oldest first."""
    from services.training.checkpoints import list_checkpoints
    from shared.storage import ObjectKind, get_store, object_key

    return [step for step, _ in list_checkpoints(get_store(), object_key(user_id, ObjectKind.JOBS, job_id))]
