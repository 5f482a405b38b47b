"""Fixtures for the training tests: a learnable tiny task, prepared as the data service would, and a job row."""

from __future__ import annotations

import json
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


def write_prepared_dataset(
    *, user_id: str, job_id: str, model_dir: Path, records: list[dict], stage: str = "sft"
) -> None:
    """Store Parquet splits and the job's manifest exactly as the data service's contract describes."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    from shared.storage import ObjectKind, get_store, object_key, put_bytes

    tok = AutoTokenizer.from_pretrained(model_dir)
    rows = {"input_ids": [], "labels": []}
    for rec in records:
        if stage == "pt":
            ids = tok(rec["text"])["input_ids"] + [tok.eos_token_id]
            labels = list(ids)
        else:
            prompt = tok.apply_chat_template(rec["messages"][:-1], add_generation_prompt=True, tokenize=False)
            full = tok.apply_chat_template(rec["messages"], tokenize=False)
            p_ids = tok(prompt)["input_ids"]
            ids = tok(full)["input_ids"]
            labels = [-100] * len(p_ids) + ids[len(p_ids) :]
        rows["input_ids"].append(ids)
        rows["labels"].append(labels)
    table = pa.table({k: pa.array(v, type=pa.list_(pa.int32())) for k, v in rows.items()})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    store = get_store()
    key = object_key(user_id, ObjectKind.DATASETS, "fixture", "train.parquet")
    put_bytes(store, key, buf.getvalue())
    manifest = {"dataset_id": "fixture", "splits": {"train": key}, "num_examples": {"train": len(records)}}
    put_bytes(
        store, object_key(user_id, ObjectKind.JOBS, job_id, "dataset/manifest.json"), json.dumps(manifest).encode()
    )


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
