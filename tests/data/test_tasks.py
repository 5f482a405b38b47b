"""The `data.*` tasks through the real (eager, embedded) queue, on uploaded objects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.data.sources import upload_dataset_folder
from shared.queue import TaskName, send_task
from shared.schemas import TaskPayload


def _job_events(job_id: str) -> list[str]:
    from shared.db import JobEvent, session_scope

    with session_scope() as session:
        return [e.message for e in session.query(JobEvent).filter_by(job_id=job_id).order_by(JobEvent.created_at)]


def test_prepare_task_writes_dataset_and_job_manifest_and_reuses_it(
    embedded: Path, reference_data: Path, tiny_model_dir: Path
) -> None:
    from shared.storage import get_bytes, get_store

    store = get_store()
    prefix = upload_dataset_folder(store, "local", reference_data, ["identity"])
    assert prefix.startswith("store://users/local/uploads/ds-upload-")
    assert upload_dataset_folder(store, "local", reference_data, ["identity"]) == prefix  # content-addressed
    config = {"model_name_or_path": str(tiny_model_dir), "dataset": "identity", "dataset_dir": prefix}

    first = send_task(TaskName.DATA_PREPARE, TaskPayload(job_id="job-a", user_id="local", config=config)).get()
    second = send_task(TaskName.DATA_PREPARE, TaskPayload(job_id="job-b", user_id="local", config=config)).get()

    assert first["dataset_id"] == second["dataset_id"]
    dataset_id = first["dataset_id"]
    assert first["splits"] == {"train": f"users/local/datasets/{dataset_id}/train.parquet"}
    for job in ("job-a", "job-b"):
        copy = json.loads(get_bytes(store, f"users/local/jobs/{job}/dataset/manifest.json"))
        assert copy["dataset_id"] == dataset_id
    assert any("reusing prepared dataset" in m for m in _job_events("job-b"))


def test_prepare_task_refuses_paths_on_the_worker(embedded: Path, reference_data: Path, tiny_model_dir: Path) -> None:
    config = {"model_name_or_path": str(tiny_model_dir), "dataset": "identity", "dataset_dir": str(reference_data)}
    with pytest.raises(PermissionError, match="store://"):
        send_task(TaskName.DATA_PREPARE, TaskPayload(job_id="job-c", user_id="local", config=config))


def test_prepare_config_names_unknown_keys() -> None:
    from pydantic import ValidationError

    from shared.schemas.datasets import PrepareConfig

    with pytest.raises(ValidationError, match="cutof_len"):
        PrepareConfig.model_validate({"model_name_or_path": "m", "dataset": "a,b", "cutof_len": 5})
    assert PrepareConfig(model_name_or_path="m", dataset="a, b").dataset == ["a", "b"]


def test_validate_and_clean_tasks_store_their_results(embedded: Path, reference_data: Path) -> None:
    from shared.storage import get_bytes, get_store

    store = get_store()
    prefix = upload_dataset_folder(store, "local", reference_data, ["alpaca_en_demo"])
    config = {"dataset": ["alpaca_en_demo"], "dataset_dir": prefix, "cleaning": {"dedup": "exact"}}

    checked = send_task(TaskName.DATA_VALIDATE, TaskPayload(job_id="job-v", user_id="local", config=config)).get()
    assert checked["report"]["records_valid"] == 999
    assert checked["stats"]["duplicates"] > 0
    assert json.loads(get_bytes(store, "users/local/jobs/job-v/validation.json")) == checked

    cleaned = send_task(TaskName.DATA_CLEAN, TaskPayload(job_id="job-k", user_id="local", config=config)).get()
    removed = cleaned["report"]["cleaning"]["exact_duplicate"]
    assert removed == checked["stats"]["duplicates"]
    lines = get_bytes(store, cleaned["outputs"]["alpaca_en_demo"]).decode().splitlines()
    assert len(lines) == 999 - removed
    assert "messages" in json.loads(lines[0])


@pytest.mark.integration
def test_prepare_task_on_a_real_s3_server(
    embedded: Path, reference_data: Path, tiny_model_dir: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    from shared.settings import get_settings
    from shared.storage import get_bytes, get_store

    for name, value in {
        "STORAGE_BACKEND": "s3",
        "S3_ENDPOINT": s3_endpoint,
        "S3_ACCESS_KEY": "testing",
        "S3_SECRET_KEY": "testing",
        "S3_BUCKET": f"data-{uuid.uuid4().hex[:12]}",
    }.items():
        monkeypatch.setenv(f"TUNEFLOW_{name}", value)
    get_settings.cache_clear()
    get_store.cache_clear()
    store = get_store()
    prefix = upload_dataset_folder(store, "local", reference_data, ["glaive_toolcall_en_demo"])
    config = {"model_name_or_path": str(tiny_model_dir), "dataset": "glaive_toolcall_en_demo", "dataset_dir": prefix}

    manifest = send_task(TaskName.DATA_PREPARE, TaskPayload(job_id="job-s3", user_id="local", config=config)).get()

    assert manifest["num_examples"]["train"] > 0
    assert get_bytes(store, manifest["splits"]["train"])[:4] == b"PAR1"
    assert (
        json.loads(get_bytes(store, "users/local/jobs/job-s3/dataset/manifest.json"))["dataset_id"]
        == manifest["dataset_id"]
    )
