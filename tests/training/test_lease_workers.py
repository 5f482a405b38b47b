"""Lease recovery across real worker processes: two `tuneflow worker training` processes on Redis, PostgreSQL
and S3; the one running a job is SIGKILLed after a checkpoint, and the other one's lease check requeues
the job, which resumes from the stored checkpoint. A replacement worker started afterwards receives the
killed worker's unacknowledged message again (a short visibility timeout) and must not run the job twice.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import psutil
import pytest

from shared.queue import Queue
from tests.infra import distributed_env, reset_process_state
from tests.training.conftest import (
    WORDS,
    create_training_job,
    job_row,
    prepare_payload,
    read_trainer_log,
    stored_checkpoint_steps,
    task_records,
)
from tuneflow._dev_procs import is_alive, log_tail, spawn, stop
from tuneflow._dev_state import ProcessRecord
from tuneflow._dev_topology import TopologyOptions, plan_services

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEARTBEAT_S = 1
LEASE_S = 4  # renewed every second while alive; a dead worker's job is requeued 4-6 s after its last beat
VISIBILITY_S = 10  # Redis may hand the killed worker's message out again after this (a worker's poll does it)
CONFIG = {
    "finetuning_type": "lora",
    "learning_rate": 0.02,
    "per_device_train_batch_size": 4,
    "max_steps": 24,
    "save_steps": 4,
    "logging_steps": 1,
    "seed": 7,
}


@dataclass
class Platform:
    """Worker processes on the test bed, started on demand; every one is stopped after the test."""

    home: Path
    env: dict[str, str]
    records: list[ProcessRecord]

    def start_worker(self, queue: Queue, name: str) -> ProcessRecord:
        """`tuneflow worker <queue>` as `name`, with a home folder of its own, as if on its own machine."""
        planned = next(s for s in plan_services(TopologyOptions(self.home)) if s.name == f"{queue.value}-worker")
        env = {**os.environ, **self.env, "TUNEFLOW_HOME": str(self.home / name)}
        record = spawn(dataclasses.replace(planned, name=name), env, self.home / "logs")
        self.records.append(record)
        return record

    def wait_ready(self, records: list[ProcessRecord], timeout_s: float = 90.0) -> None:
        """Until every worker in `records` has logged that it is ready.

        Not a Celery ping: workers of one queue on one host share a node name, so a ping cannot count them.
        """
        deadline = time.monotonic() + timeout_s
        while not all(f"{r.spec.node} ready." in Path(r.log).read_text(errors="replace") for r in records):
            dead = [r.spec.name for r in records if not is_alive(r)]
            assert not dead and time.monotonic() < deadline, self.logs(f"workers not ready; dead: {dead}")
            time.sleep(0.2)

    def logs(self, headline: str) -> str:
        """`headline` and the end of every worker's log, for assertion messages."""
        return "\n\n".join([headline, *(f"--- {r.spec.name}\n{log_tail(r, 30)}" for r in self.records)])


@pytest.fixture
def platform(
    redis_url: str, database_url: str, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Platform]:
    """This process and its workers on a Redis db and a bucket of their own (the session's database), short lease."""
    env = distributed_env(redis_url=redis_url, database_url=database_url, s3_endpoint=s3_endpoint, home=tmp_path)
    env |= {
        "TUNEFLOW_WORKER_HEARTBEAT_S": str(HEARTBEAT_S),
        "TUNEFLOW_JOB_LEASE_S": str(LEASE_S),
        "TUNEFLOW_VISIBILITY_TIMEOUT_S": str(VISIBILITY_S),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_process_state()
    platform = Platform(tmp_path, env, [])
    try:
        yield platform
    finally:
        stop(platform.records, grace_s=5)
        reset_process_state()


def test_killed_workers_job_is_requeued_by_the_lease_and_resumes_on_another(
    platform: Platform, tiny_model_dir: Path
) -> None:
    from services.data.tasks import prepare
    from shared.queue import TaskName, send_task
    from shared.storage import ObjectKind, get_store, object_key

    began = time.monotonic()
    events_worker = platform.start_worker(Queue.EVENTS, "events-worker")
    workers = [platform.start_worker(Queue.TRAINING, name) for name in ("worker-a", "worker-b")]
    config = {"model_name_or_path": str(tiny_model_dir), **CONFIG}
    job_id = create_training_job(config)
    payload = prepare_payload(user_id="local", job_id=job_id, model_dir=tiny_model_dir, records=task_records(WORDS))
    prepare(payload)  # the data service's task, in this process: the dataset lands in S3 as in the chain
    platform.wait_ready([events_worker, *workers])
    ready_s = time.monotonic() - began

    original = send_task(TaskName.TRAINING_RUN, {**payload, "config": config})
    sent_s = time.monotonic()
    first = _wait(lambda: _running_on(job_id, workers), 90, platform, "no worker took the job")
    other = next(w for w in workers if w is not first)
    _wait(lambda: stored_checkpoint_steps(job_id), 90, platform, "no checkpoint stored")
    trainer = psutil.Process(first.pid).children()
    os.kill(first.pid, signal.SIGKILL)  # the worker alone: its training process must die with it
    killed, killed_s = datetime.now(UTC), time.monotonic()
    _wait(lambda: not any(_running(p) for p in trainer), 10, platform, "the training process outlived its worker")
    checkpoint = max(stored_checkpoint_steps(job_id))
    assert checkpoint < CONFIG["max_steps"] and job_row(job_id)["status"] == "running"

    _wait(lambda: _running_on(job_id, [other]), 30, platform, "the lease check did not move the job")
    moved_s = time.monotonic() - killed_s
    time.sleep(max(0.0, sent_s + VISIBILITY_S + 1 - time.monotonic()))  # the dead worker's message is now due
    replacement = platform.start_worker(Queue.TRAINING, "worker-a2")  # as a supervisor restarts a dead worker
    redelivered = original.get(timeout=60)  # the replacement's first poll put the message back and took it
    _wait(lambda: job_row(job_id)["status"] in ("succeeded", "failed"), 120, platform, "the job never finished")
    total_s = time.monotonic() - began

    row, events = job_row(job_id), _events(job_id)
    assert row["status"] == "succeeded", platform.logs(str(row["error"]))
    assert row["attempts"] == 2 and _pid(row["worker"]) == other.pid
    assert redelivered["status"] == "running" and is_alive(replacement)  # refused while the lease was live
    runs = [_pid(e.data["worker"]) for e in events if e.data.get("status") == "running"]
    assert runs == [first.pid, other.pid]  # the replacement never started a run beside the requeued one
    requeues = [e for e in events if "requeued_by" in e.data]
    assert len(requeues) == 1 and _pid(requeues[0].data["requeued_by"]) == other.pid  # the guarded update
    beats = [_at(e) for e in events if e.data.get("heartbeat") and _pid(e.data["worker"]) == first.pid]
    lease_wait_s = (_at(requeues[0]) - max(beats)).total_seconds()
    assert LEASE_S <= lease_wait_s < 2 * LEASE_S and max(beats) < killed
    assert all(_at(e) < killed for e in events if _pid(e.data.get("worker", ":0")) == first.pid)
    succeeded = [e for e in events if e.data.get("status") == "succeeded"]
    assert len(succeeded) == 1 and _at(succeeded[0]) > _at(requeues[0])  # reported once, by the second run
    renewals = [_at(e) for e in events if _pid(e.data.get("worker", ":0")) == other.pid] + [_at(succeeded[0])]
    renewal_gap_s = max(b - a for a, b in pairwise(renewals)).total_seconds()
    assert renewal_gap_s < LEASE_S / 2  # renewed throughout: dataset, restore and upload included

    resumed = [e for e in events if "resume_from" in e.data]
    assert [e.data["resume_from"] for e in resumed] == [f"checkpoint-{checkpoint}"]
    second_run = [e.data["step"] for e in events if e.type == "metrics" and _at(e) > _at(resumed[0])]
    assert second_run == list(range(checkpoint + 1, CONFIG["max_steps"] + 1))  # nothing before it repeated
    assert [r["step"] for r in read_trainer_log(job_id)] == list(range(1, CONFIG["max_steps"] + 1))
    prefix = object_key("local", ObjectKind.JOBS, job_id)
    keys = {info.key for info in get_store().list(prefix)}
    assert {prefix + "final/adapter_config.json", prefix + "final/adapter_model.safetensors"} <= keys
    assert stored_checkpoint_steps(job_id) == []
    print(
        f"\nworkers ready in {ready_s:.1f}s; killed after checkpoint-{checkpoint}; requeued {lease_wait_s:.1f}s "
        f"after the last heartbeat, running on the other worker {moved_s:.1f}s after the kill; longest gap "
        f"between renewals {renewal_gap_s:.1f}s; total {total_s:.1f}s"
    )


def _wait(condition: Callable[[], Any], timeout_s: float, platform: Platform, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, platform.logs(what)
        time.sleep(0.1)
    return value


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _running_on(job_id: str, workers: list[ProcessRecord]) -> ProcessRecord | None:
    """The worker among `workers` that the job's record says runs it now."""
    row = job_row(job_id)
    if row["status"] != "running" or not row["worker"]:
        return None
    return next((w for w in workers if w.pid == _pid(row["worker"])), None)


def _events(job_id: str) -> list[Any]:
    from shared.db import JobEvent, session_scope

    with session_scope() as session:
        events = session.query(JobEvent).filter_by(job_id=job_id).order_by(JobEvent.created_at).all()
        session.expunge_all()
        return events


def _pid(worker: str) -> int:
    return int(worker.rsplit(":", 1)[1])


def _at(event: Any) -> datetime:
    stamp = event.created_at
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)  # the tables store naive UTC
