"""Every text-only LLaMA-Factory demo dataset validates and prepares through the registry, as is."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from services.data.prepare import prepare_dataset
from shared.schemas.datasets import PrepareConfig
from shared.storage.local import LocalObjectStore

# (registry name, stage, records in the file)
TEXT_ONLY = [
    ("alpaca_en_demo", "sft", 999),
    ("alpaca_zh_demo", "sft", 1000),
    ("identity", "sft", 91),
    ("glaive_toolcall_en_demo", "sft", 300),
    ("glaive_toolcall_zh_demo", "sft", 300),
    ("c4_demo", "pt", 300),
    ("wiki_demo", "pt", 30),
    ("dpo_en_demo", "dpo", 300),
]
CLEANING_CODES = {"exact_duplicate"}  # the demo files hold a few verbatim repeats; nothing else may be dropped


@pytest.mark.parametrize(("name", "stage", "records"), TEXT_ONLY, ids=[t[0] for t in TEXT_ONLY])
def test_demo_dataset_prepares_through_registry(
    name: str, stage: str, records: int, reference_data: Path, tiny_model_dir: Path, store: LocalObjectStore
) -> None:
    config = PrepareConfig(
        model_name_or_path=str(tiny_model_dir),
        dataset=name,
        dataset_dir=str(reference_data),
        stage=stage,
        cutoff_len=16384,  # the tiny vocabulary makes long token sequences; nothing should need cutting here
        val_size=0.1,
        max_samples=120,
    )
    manifest = prepare_dataset(config, store=store, user_id="alice", job_id="job-1")

    report = manifest.report
    assert set(report.dropped) <= CLEANING_CODES, report.problems[:3]
    assert report.records_valid == report.records_read
    assert report.truncated == 0
    assert set(manifest.splits) == {"train", "validation"}
    assert sum(manifest.num_examples.values()) == report.records_written > 0
    train = pq.read_table(store.root / manifest.splits["train"])
    assert train.column_names == manifest.columns
    assert train.num_rows == manifest.num_examples["train"]
    ids_column, labels_column = manifest.columns[0], manifest.columns[1]
    ids, labels = train[ids_column].to_pylist(), train[labels_column].to_pylist()
    assert all(len(i) == len(lab) <= config.cutoff_len for i, lab in zip(ids, labels, strict=True))
    trained = sum(len(lab) - lab.count(-100) for lab in labels)
    if stage == "pt":
        assert trained == sum(map(len, ids))  # pre-training learns every token
    else:
        assert 0 < trained < sum(map(len, ids))  # prompts are masked, responses trained
    job_copy = store.root / "users/alice/jobs/job-1/dataset/manifest.json"
    assert job_copy.read_text() == manifest.model_dump_json()
