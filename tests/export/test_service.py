"""`export.run` through the queue (embedded), the store layout and presigned URLs, and `tuneflow export`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest
from typer.testing import CliRunner

from services.export import publish
from services.export.publish import download_urls, export_prefix, publish_export
from shared.queue import TaskName, send_task
from shared.schemas import JobKind, JobStatus, TaskPayload
from shared.schemas.export import ExportManifest
from shared.storage import ObjectKind, get_bytes, get_store, object_key, upload_dir

USER = "alice"


def _run_job(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    from shared.db import session_scope
    from shared.db.jobs import create_job, ensure_user

    with session_scope() as session:
        ensure_user(session, USER)
        job_id = create_job(session, user_id=USER, kind=JobKind.EXPORT, config=config).id
    result = send_task(TaskName.EXPORT_RUN, TaskPayload(job_id=job_id, user_id=USER, config=config)).get()
    return job_id, result


def _job(job_id: str) -> tuple[str, dict[str, Any] | None]:
    from shared.db import Job, session_scope

    with session_scope() as session:
        job = session.get(Job, job_id)
        return job.status, job.error


def test_export_task_follows_a_training_job_into_the_store(embedded: Path, lora_adapter: Path) -> None:
    store = get_store()
    # What the training service leaves behind: the adapter under the job's final/ prefix.
    upload_dir(store, object_key(USER, ObjectKind.JOBS, "ftjob-abc", "final/"), lora_adapter)
    job_id, result = _run_job({"source_job_id": "ftjob-abc", "export_size": 0.001, "verify_max_new_tokens": 2})

    assert result["status"] == "succeeded" and _job(job_id)[0] == JobStatus.SUCCEEDED.value
    prefix = export_prefix(USER, job_id)
    assert result["outputs"] == {"export": prefix, "manifest": prefix + "manifest.json"}
    assert result["metrics"]["merge_logits"] <= 1e-4
    manifest = ExportManifest.model_validate_json(get_bytes(store, prefix + "manifest.json"))
    assert manifest.source_job_id == "ftjob-abc" and manifest.adapter == f"store://users/{USER}/jobs/ftjob-abc/final/"
    stored = {info.key[len(prefix) :]: info.size for info in store.list(prefix)}
    assert stored == {f.path: f.bytes for f in manifest.files} | {"manifest.json": stored["manifest.json"]}
    urls = download_urls(USER, job_id)
    with urlopen(urls["manifest.json"]) as response:  # embedded mode: file:// URLs
        assert json.loads(response.read())["export_id"] == job_id


def test_failed_export_task_reports_the_problem_and_stores_nothing(
    embedded: Path, tiny_model_dir: Path, llama_adapter: Path
) -> None:
    job_id, result = _run_job({"model_name_or_path": str(tiny_model_dir), "adapter_name_or_path": str(llama_adapter)})
    status, error = _job(job_id)
    assert result["status"] == "failed" and status == JobStatus.FAILED.value
    assert error and "model_type 'llama' != 'qwen2'" in error["message"]
    assert list(get_store().list(export_prefix(USER, job_id))) == []


def test_invalid_config_fails_the_job_naming_the_field(embedded: Path) -> None:
    job_id, result = _run_job({"model_name_or_path": "x", "export_format": "onnx", "export_quantization_bit": 8})
    assert result["status"] == "failed"
    assert "export_quantization_bit is not supported with export_format=onnx" in (_job(job_id)[1] or {})["message"]


@pytest.mark.integration
def test_publish_to_s3_is_all_or_nothing_and_presigned(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    from tests.infra import reset_process_state

    for name, value in {
        "TUNEFLOW_MODE": "embedded",
        "TUNEFLOW_HOME": str(tmp_path / "home"),
        "TUNEFLOW_STORAGE_BACKEND": "s3",
        "TUNEFLOW_S3_ENDPOINT": s3_endpoint,
        "TUNEFLOW_S3_ACCESS_KEY": "testing",
        "TUNEFLOW_S3_SECRET_KEY": "testing",
        "TUNEFLOW_S3_BUCKET": "exports-test",
    }.items():
        monkeypatch.setenv(name, value)
    reset_process_state()
    folder = tmp_path / "export"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "sub" / "tokenizer.json").write_text("{}")
    (folder / "manifest.json").write_text('{"ok": true}')
    try:
        prefix = publish_export(folder, user_id=USER, export_id="exportjob-1")
        urls = download_urls(USER, "exportjob-1")
        assert sorted(urls) == ["manifest.json", "model.safetensors", "sub/tokenizer.json"]
        assert httpx.get(urls["model.safetensors"]).content == b"weights"

        calls = []

        def flaky_upload(store, key, path):  # type: ignore[no-untyped-def]
            calls.append(key)
            if len(calls) == 2:
                raise ConnectionError("S3 went away")
            store.put_stream(key, path.open("rb"), path.stat().st_size)

        monkeypatch.setattr(publish, "upload_file", flaky_upload)
        with pytest.raises(ConnectionError):
            publish_export(folder, user_id=USER, export_id="exportjob-1")
        assert list(get_store().list(prefix)) == []
        assert not calls[0].endswith("manifest.json")  # the manifest, marking completeness, goes last
    finally:
        reset_process_state()


@pytest.mark.slow
def test_export_follows_real_training_in_a_chain(embedded: Path, tiny_model_dir: Path) -> None:
    """data.prepare, then training.run and export.run chained: the export reads the job's final/ adapter."""
    from shared.db import session_scope
    from shared.db.jobs import create_job
    from shared.queue import send_chain
    from tests.training.conftest import WORDS, create_training_job, task_records, write_prepared_dataset

    train_config = {"model_name_or_path": str(tiny_model_dir), "max_steps": 2, "per_device_train_batch_size": 4}
    train_id = create_training_job(train_config, user_id=USER)
    write_prepared_dataset(user_id=USER, job_id=train_id, model_dir=tiny_model_dir, records=task_records(WORDS))
    export_config = {"source_job_id": train_id, "template": "qwen", "verify_max_new_tokens": 2}
    with session_scope() as session:
        export_id = create_job(session, user_id=USER, kind=JobKind.EXPORT, config=export_config).id
    send_chain(
        [
            (TaskName.TRAINING_RUN, TaskPayload(job_id=train_id, user_id=USER, config=train_config)),
            (TaskName.EXPORT_RUN, TaskPayload(job_id=export_id, user_id=USER, config=export_config)),
        ]
    )
    assert _job(export_id)[0] == JobStatus.SUCCEEDED.value
    manifest = ExportManifest.model_validate_json(
        get_bytes(get_store(), export_prefix(USER, export_id) + "manifest.json")
    )
    assert manifest.source_job_id == train_id and manifest.method == "lora" and manifest.merged
    assert manifest.base_model == str(tiny_model_dir)  # as the training job recorded it in adapter_config.json


def test_cli_writes_export_and_manifest_into_export_dir(
    tiny_model_dir: Path, lora_adapter: Path, tmp_path: Path
) -> None:
    from tuneflow.cli import app

    config = tmp_path / "export.yaml"
    config.write_text(
        f"model_name_or_path: {tiny_model_dir}\nadapter_name_or_path: {lora_adapter}\n"
        f"template: qwen\nexport_dir: {tmp_path / 'out'}\nexport_size: 5\n"
    )
    result = CliRunner().invoke(app, ["export", str(config), "export_size=0.001", "verify_max_new_tokens=2"])
    assert result.exit_code == 0, result.output
    assert "merge_logits" in result.output and "merged export written to" in result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["template"] == "qwen" and manifest["config"]["export_size"] == 0.001
    assert len(list((tmp_path / "out").glob("model-*.safetensors"))) >= 2

    bad = CliRunner().invoke(app, ["export", str(config), f"adapter_name_or_path={tmp_path / 'gone'}"])
    assert bad.exit_code == 1 and "not found" in bad.output
