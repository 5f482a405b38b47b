"""Lease requeue of jobs whose worker died, and the pre-flight memory refusal."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.training import lease
from services.training.preflight import ModelShape, PreflightError, check_fits, estimate_bytes
from shared.schemas.training import TrainJobConfig
from tests.training.conftest import create_training_job, job_row, run_training, set_running, task_records


def test_expired_lease_is_requeued_once(embedded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = []
    monkeypatch.setattr(lease, "send_task", lambda name, payload: sent.append((str(name), payload)))
    now = datetime.now(UTC)
    stale = create_training_job({"model_name_or_path": "m"})
    fresh = create_training_job({"model_name_or_path": "m"})
    set_running(stale, now - timedelta(seconds=600))  # default lease: 180 s
    set_running(fresh, now - timedelta(seconds=10))

    assert lease.requeue_expired_jobs(now) == [stale]
    assert lease.requeue_expired_jobs(now) == []  # requeued jobs are queued, not running: no double requeue
    assert [(name, p.job_id, p.config) for name, p in sent] == [("training.run", stale, {"model_name_or_path": "m"})]
    assert job_row(stale)["status"] == "queued" and job_row(fresh)["status"] == "running"


def test_a_job_is_claimed_once_while_its_lease_lives(embedded: Path) -> None:
    now = datetime.now(UTC)
    job_id = create_training_job({"model_name_or_path": "m"})

    assert lease.claim_job(job_id, "host:1", now)
    assert not lease.claim_job(job_id, "host:2", now + timedelta(seconds=10))  # a duplicate delivery meanwhile
    assert lease.claim_job(job_id, "host:2", now + timedelta(seconds=181))  # default lease: 180 s
    assert job_row(job_id)["worker"] == "host:2" and job_row(job_id)["status"] == "running"


def test_a_late_heartbeat_from_the_worker_that_lost_the_job_changes_nothing(embedded: Path) -> None:
    from services.gateway.recorder import record_event
    from shared.db import JobEvent, session_scope
    from shared.schemas import Event

    now = datetime.now(UTC)
    job_id = create_training_job({"model_name_or_path": "m"})
    assert lease.claim_job(job_id, "host:2", now)  # host:1 died; host:2 took the job over
    late = Event(job_id=job_id, message="heartbeat", data={"heartbeat": True, "worker": "host:1"})
    late.created_at = now - timedelta(seconds=5)
    beat = Event(job_id=job_id, message="heartbeat", data={"heartbeat": True, "worker": "host:2"})
    beat.created_at = now + timedelta(seconds=1)

    with session_scope() as session:
        assert record_event(session, late)
    row = job_row(job_id)
    assert row["worker"] == "host:2" and row["heartbeat_at"].replace(tzinfo=UTC) == now
    with session_scope() as session:
        assert record_event(session, beat)
        assert session.get(JobEvent, late.id) is not None  # the late beat is still on the job's record
    assert job_row(job_id)["heartbeat_at"].replace(tzinfo=UTC) == beat.created_at


def test_the_lease_checker_outlives_a_failing_check(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def flaky() -> list[str]:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("database went away")
        return []

    monkeypatch.setattr(lease, "requeue_expired_jobs", flaky)
    stop = lease.start_lease_checker(every_s=0.01)
    try:
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
    assert len(calls) >= 3


QWEN_7B = ModelShape(
    params=7_600_000_000,
    linear_params=6_500_000_000,
    hidden=3584,
    intermediate=18944,
    layers=28,
    heads=28,
    vocab=152064,
)


def test_preflight_suggests_the_change_that_fits() -> None:
    lora = TrainJobConfig(model_name_or_path="m", per_device_train_batch_size=16, cutoff_len=2048)
    with pytest.raises(
        PreflightError, match="per_device_train_batch_size=1 with gradient_accumulation_steps=16"
    ) as err:
        check_fits(QWEN_7B, lora, row_tokens=2048, available=48 * 2**30)
    assert err.value.param == "per_device_train_batch_size"
    full = TrainJobConfig(model_name_or_path="m", finetuning_type="full", per_device_train_batch_size=1)
    with pytest.raises(PreflightError, match="quantization_bit=4") as err:
        check_fits(QWEN_7B, full, row_tokens=512, available=24 * 2**30)
    assert err.value.param == "finetuning_type"
    qlora = TrainJobConfig(model_name_or_path="m", quantization_bit=4, per_device_train_batch_size=1)
    assert (
        estimate_bytes(QWEN_7B, qlora, 512)
        < 12 * 2**30
        < estimate_bytes(QWEN_7B, lora.model_copy(update={"per_device_train_batch_size": 1}), 512) + 12 * 2**30
    )


def test_job_that_cannot_fit_fails_before_training(
    embedded: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.training import runner

    monkeypatch.setattr(runner, "available_bytes", lambda: 100 * 2**20)
    job_id, result = run_training(tiny_model_dir, task_records(["abc"]), max_steps=1, per_device_train_batch_size=8)
    row = job_row(job_id)
    assert result["status"] == "failed" and row["status"] == "failed"
    assert row["error"]["code"] == "insufficient_memory" and "needs about" in row["error"]["message"]
