"""Label options, truncation at turn boundaries, splits, balancing and input safety of `prepare_dataset`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from services.data.prepare import prepare_dataset
from shared.schemas.datasets import PrepareConfig
from shared.storage.local import LocalObjectStore

TURNS = [("Hi", "Hello."), ("Name a colour.", "Blue."), ("Another?", " ".join(["Red"] * 60))]


def _multi_turn() -> dict[str, Any]:
    messages = []
    for question, answer in TURNS:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return {"messages": messages}


def _prepare(store: LocalObjectStore, model: Path, data: Path, **options: Any) -> tuple[Any, list[dict]]:
    config = PrepareConfig(model_name_or_path=str(model), dataset=[str(data)], **options)
    manifest = prepare_dataset(config, store=store, user_id="alice")
    return manifest, pq.read_table(store.root / manifest.splits["train"]).to_pylist()


def _trained_text(tokenizer: Any, row: dict) -> str:
    return tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100])


@pytest.fixture
def chat_file(tmp_path: Path) -> Path:
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps(_multi_turn()) + "\n")
    return path


def test_mask_history_and_train_on_prompt(
    chat_file: Path, tiny_model_dir: Path, tokenizer: Any, store: LocalObjectStore
) -> None:
    _, (all_turns,) = _prepare(store, tiny_model_dir, chat_file)
    assert _trained_text(tokenizer, all_turns) == "".join(f"{a}<|im_end|>\n" for _, a in TURNS)
    _, (last_only,) = _prepare(store, tiny_model_dir, chat_file, mask_history=True)
    assert _trained_text(tokenizer, last_only) == f"{TURNS[-1][1]}<|im_end|>\n"
    _, (everything,) = _prepare(store, tiny_model_dir, chat_file, train_on_prompt=True)
    assert everything["labels"] == everything["input_ids"]


def test_overlong_conversations_keep_whole_turns_or_are_dropped(
    chat_file: Path, tiny_model_dir: Path, tokenizer: Any, store: LocalObjectStore
) -> None:
    _, (full,) = _prepare(store, tiny_model_dir, chat_file)
    cutoff = len(full["input_ids"]) - 10  # the long last answer no longer fits
    manifest, (row,) = _prepare(store, tiny_model_dir, chat_file, cutoff_len=cutoff)
    assert manifest.report.truncated == 1
    assert tokenizer.decode(row["input_ids"]).endswith("Blue.<|im_end|>\n")  # cut after a whole turn
    assert row["input_ids"] == full["input_ids"][: len(row["input_ids"])]
    with pytest.raises(ValueError, match="no valid examples"):
        _prepare(store, tiny_model_dir, chat_file, cutoff_len=cutoff, overlong="drop")


def test_validation_split_by_count_and_fraction(tmp_path: Path, tiny_model_dir: Path, store: LocalObjectStore) -> None:
    data = tmp_path / "many.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"Q{i}", "output": f"A{i}"}) + "\n" for i in range(50)))
    manifest, _ = _prepare(store, tiny_model_dir, data, val_size=7)
    assert manifest.num_examples == {"train": 43, "validation": 7}
    manifest, _ = _prepare(store, tiny_model_dir, data, val_size=0.2)
    assert manifest.num_examples == {"train": 40, "validation": 10}


def test_balance_by_label_column(tmp_path: Path, tiny_model_dir: Path, store: LocalObjectStore) -> None:
    data = tmp_path / "labelled.jsonl"
    rows = [{"instruction": f"Q{i}", "output": f"A{i}", "topic": "math" if i < 12 else "art"} for i in range(16)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest, _ = _prepare(store, tiny_model_dir, data, balance_by="topic")
    assert manifest.num_examples == {"train": 8}
    assert manifest.report.cleaning["balanced_out"] == 8


def test_registry_file_names_cannot_leave_the_dataset_folder(
    tmp_path: Path, tiny_model_dir: Path, store: LocalObjectStore
) -> None:
    folder = tmp_path / "ds"
    folder.mkdir()
    (tmp_path / "secret.json").write_text("[]")
    (folder / "dataset_info.json").write_text(json.dumps({"x": {"file_name": "../secret.json"}}))
    config = PrepareConfig(model_name_or_path=str(tiny_model_dir), dataset="x", dataset_dir=str(folder))
    with pytest.raises(PermissionError, match="outside the dataset folder"):
        prepare_dataset(config, store=store, user_id="alice")


def test_records_a_chat_template_refuses_are_reported(
    tmp_path: Path, tiny_model_dir: Path, store: LocalObjectStore
) -> None:
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    strict_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
        "{{ m['role'] + ': ' + m['content'] + eos_token }}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"
    )
    (model / "chat_template.jinja").write_text(strict_template)
    data = tmp_path / "two.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d", "system": "s"}\n')
    manifest, rows = _prepare(store, model, data)
    assert len(rows) == 1
    (problem,) = manifest.report.problems
    assert (problem.line, problem.code) == (2, "template_error")
    assert "no system role" in problem.reason


def test_long_pretraining_text_becomes_several_rows_and_one_record(
    tmp_path: Path, tiny_model_dir: Path, tokenizer: Any, store: LocalObjectStore
) -> None:
    data = tmp_path / "docs.txt"
    data.write_text("word " * 300 + "end\nshort document\n")
    manifest, rows = _prepare(store, tiny_model_dir, data, stage="pt", cutoff_len=64)
    ids = [t for row in rows for t in row["input_ids"]]
    assert all(len(row["input_ids"]) <= 64 and row["labels"] == row["input_ids"] for row in rows)
    assert len(rows) > 2 and manifest.report.records_written == len(rows)
    assert tokenizer.decode(ids) == "word " * 300 + "end<|im_end|>short document<|im_end|>"
    records = (store.root / manifest.records["train"]).read_text().splitlines()
    assert [json.loads(r) for r in records] == [{"text": "word " * 300 + "end"}, {"text": "short document"}]
