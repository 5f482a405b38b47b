"""Training, export and evaluation jobs refuse another user's stored model, naming the field."""

from __future__ import annotations

import pytest

BOB_MODEL = "store://users/bob/jobs/ftjob-bob/final/"


def test_training_job_fails_with_permission_denied(embedded):
    from shared.queue import TaskName, send_task
    from tests.training.conftest import create_training_job, job_row

    config = {"model_name_or_path": BOB_MODEL}
    job_id = create_training_job(config)
    result = send_task(TaskName.TRAINING_RUN, {"job_id": job_id, "user_id": "local", "config": config}).get()
    row = job_row(job_id)
    assert result["status"] == "failed" and row["status"] == "failed"
    assert row["error"]["code"] == "permission_denied" and row["error"]["param"] == "model_name_or_path"


def test_export_refuses_before_any_work(embedded):
    from services.export.errors import ExportError
    from services.export.publish import export_to_store
    from shared.schemas.export import ExportConfig
    from shared.storage import get_store

    with pytest.raises(ExportError, match="adapter_name_or_path: .* is not under store://users/alice/"):
        export_to_store(ExportConfig(adapter_name_or_path=BOB_MODEL), user_id="alice", export_id="exportjob-1")
    assert list(get_store().list("users/alice/")) == []


@pytest.mark.parametrize("field", ["model_name_or_path", "adapter_name_or_path"])
def test_evaluation_refuses_another_users_model_or_fine_tuned_name(embedded, field):
    from services.evaluation.job import run_evaluation_job
    from shared.schemas.evaluation import EvalConfig
    from shared.storage import get_store

    config = {"model_name_or_path": "Qwen/Qwen2.5-0.5B", "eval_dataset": ["users/alice/uploads/u1/eval.jsonl"]}
    config[field] = "ft:base:bob:ftjob-bob"  # a fine-tuned name resolves to bob's job prefix
    with pytest.raises(PermissionError, match=f"{field}: .* is not under store://users/alice/"):
        run_evaluation_job(get_store(), user_id="alice", job_id="evaljob-1", config=EvalConfig.model_validate(config))


def test_evaluation_data_key_cannot_climb_out_of_the_users_prefix(embedded):
    # On the local store 'users/alice/../bob/...' resolves to bob's file: the prefix check alone let it through.
    from services.evaluation.job import run_evaluation_job
    from shared.schemas.evaluation import EvalConfig
    from shared.storage import get_store, object_key, put_bytes

    put_bytes(get_store(), object_key("bob", "uploads", "u1", "eval.jsonl"), b'{"messages": []}\n')
    config = EvalConfig.model_validate(
        {"model_name_or_path": "Qwen/Qwen2.5-0.5B", "eval_dataset": ["users/alice/../bob/uploads/u1/eval.jsonl"]}
    )
    with pytest.raises(PermissionError, match="eval_dataset: .* is not under 'users/alice/'"):
        run_evaluation_job(get_store(), user_id="alice", job_id="evaljob-2", config=config)


@pytest.mark.parametrize(
    ("key", "owned"),
    [
        ("users/alice/uploads/u1/a.jsonl", True),
        ("users/alice/", True),
        ("users/alice/../bob/x", False),
        ("users/alicex/x", False),
        ("users/bob/x", False),
        ("other/users/alice/x", False),
    ],
)
def test_is_owned_key(key, owned):
    from shared.storage import is_owned_key

    assert is_owned_key(key, "alice") is owned
