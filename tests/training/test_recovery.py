"""Crash recovery and cancel: a SIGKILLed worker's job resumes from its stored checkpoint with the same
per-step losses as an uninterrupted run; a cancel request stops the job at the next step boundary."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.training.conftest import (
    WORDS,
    create_training_job,
    job_row,
    read_trainer_log,
    set_running,
    stored_checkpoint_steps,
    task_records,
    write_prepared_dataset,
)

CONFIG = {
    "finetuning_type": "lora",
    "learning_rate": 0.02,
    "per_device_train_batch_size": 4,
    "max_steps": 20,
    "save_steps": 4,
    "logging_steps": 1,
    "seed": 7,
}
WORKER = "from shared.queue import TaskName, send_task; import sys, json; send_task(TaskName.TRAINING_RUN, json.loads(sys.argv[1]))"


def _submit(model_dir: Path) -> tuple[str, dict]:
    config = {"model_name_or_path": str(model_dir), **CONFIG}
    job_id = create_training_job(config)
    write_prepared_dataset(user_id="local", job_id=job_id, model_dir=model_dir, records=task_records(WORDS))
    return job_id, {"job_id": job_id, "user_id": "local", "config": config}


@pytest.mark.slow
def test_sigkilled_worker_resumes_with_identical_losses(embedded: Path, task_model_dir: Path) -> None:
    import json

    from shared.queue import TaskName, send_task

    reference_id, reference_payload = _submit(task_model_dir)
    send_task(TaskName.TRAINING_RUN, reference_payload).get()
    reference = {r["step"]: r["loss"] for r in read_trainer_log(reference_id)}

    job_id, payload = _submit(task_model_dir)
    worker = subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(payload)], start_new_session=True)
    deadline = time.monotonic() + 120
    while not any(step >= 8 for step in stored_checkpoint_steps(job_id)):
        assert worker.poll() is None and time.monotonic() < deadline, "worker ended before its second checkpoint"
        time.sleep(0.05)
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its training process, mid-job
    worker.wait()
    killed_at = max(stored_checkpoint_steps(job_id))
    assert killed_at < CONFIG["max_steps"] and job_row(job_id)["status"] == "running"
    assert send_task(TaskName.TRAINING_RUN, payload).get()["status"] == "running"  # the dead worker's lease holds
    set_running(job_id, datetime.now(UTC) - timedelta(hours=1))  # Redis redelivers only after the lease ran out

    send_task(TaskName.TRAINING_RUN, payload).get()  # the redelivered task

    row = job_row(job_id)
    assert row["status"] == "succeeded" and row["attempts"] == 2
    assert row["result"]["metrics"]["global_step"] == CONFIG["max_steps"]
    resumed = {r["step"]: r["loss"] for r in read_trainer_log(job_id)}
    assert sorted(resumed) == list(range(1, CONFIG["max_steps"] + 1))  # no step lost or logged twice
    for step in range(killed_at + 1, CONFIG["max_steps"] + 1):
        assert resumed[step] == pytest.approx(reference[step], abs=1e-4), f"step {step}"


def _start_long_run(home: Path, model_dir: Path) -> tuple[str, threading.Thread, Path, dict]:
    """Start a 1000-step job in a thread and wait for 3 logged steps: (job id, thread, local log, its result)."""
    from shared.queue import TaskName, send_task

    job_id, payload = _submit(model_dir)
    payload["config"]["max_steps"] = 1000
    outcome: dict = {}
    runner = threading.Thread(target=lambda: outcome.update(send_task(TaskName.TRAINING_RUN, payload).get()))
    runner.start()
    local_log = home / "training" / job_id / "logs" / "trainer_log.jsonl"
    deadline = time.monotonic() + 120
    while not (local_log.exists() and len(local_log.read_text().splitlines()) >= 3):
        assert runner.is_alive() and time.monotonic() < deadline
        time.sleep(0.05)
    return job_id, runner, local_log, outcome


def test_cancel_stops_at_the_next_step_boundary(embedded: Path, task_model_dir: Path) -> None:
    from shared.db.jobs import request_cancel
    from shared.storage import ObjectKind, get_store, object_key

    job_id, runner, local_log, _ = _start_long_run(embedded, task_model_dir)
    lines = local_log.read_text().splitlines()
    requested = time.monotonic()
    assert request_cancel(job_id)
    runner.join(60)
    stopped = time.monotonic() - requested

    steps = [json.loads(x)["step"] for x in lines]
    step_s = max(float(json.loads(lines[-1])["eta_s"]) / (1000 - steps[-1]), 0.01)
    assert stopped < step_s + 5.0, f"stopped {stopped:.1f}s after the request (step time {step_s:.2f}s)"
    row = job_row(job_id)
    assert row["status"] == "cancelled"
    prefix = object_key("local", ObjectKind.JOBS, job_id)
    assert not list(get_store().list(prefix + "final/"))  # nothing partial published
    assert not (embedded / "training" / job_id / "final").exists()


def test_a_run_whose_job_another_worker_took_over_stops_without_publishing(
    embedded: Path, task_model_dir: Path
) -> None:
    from services.training.lease import claim_job
    from shared.db import JobEvent, session_scope
    from shared.settings import get_settings
    from shared.storage import ObjectKind, get_store, object_key

    job_id, runner, local_log, outcome = _start_long_run(embedded, task_model_dir)
    # As if this worker's heartbeats had stopped arriving: its lease ran out and another worker took the job.
    later = datetime.now(UTC) + timedelta(seconds=get_settings().job_lease_s + 1)
    assert claim_job(job_id, "other-host:1", later)
    taken_over = time.monotonic()
    runner.join(60)

    assert not runner.is_alive() and time.monotonic() - taken_over < 10
    assert outcome["status"] == "running"  # the job goes on, in the other worker's hands
    row = job_row(job_id)
    assert (row["status"], row["worker"]) == ("running", "other-host:1")
    assert json.loads(local_log.read_text().splitlines()[-1])["step"] < 1000
    prefix = object_key("local", ObjectKind.JOBS, job_id)
    assert not list(get_store().list(prefix + "final/"))  # nothing published beside the new owner's run
    with session_scope() as session:
        messages = [e.message for e in session.query(JobEvent).filter_by(job_id=job_id)]
    assert any("took this job over" in m for m in messages)
    assert not any(m == "job succeeded" or "cancelled" in m for m in messages)


def test_job_cancelled_in_the_queue_never_starts(embedded: Path) -> None:
    from services.training.runner import run_training_job
    from shared.db.jobs import request_cancel

    config = {"model_name_or_path": "never/loaded"}
    job_id = create_training_job(config)
    assert request_cancel(job_id)
    assert run_training_job(job_id=job_id, user_id="local", config=config).status == "cancelled"
    row = job_row(job_id)
    assert row["status"] == "cancelled" and row["attempts"] == 0
