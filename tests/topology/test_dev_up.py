"""End to end: `tuneflow dev up` starts every service as its own process; pings cross every queue.

One topology per module (starting it is the slow part), so the tests run in file order and the
last ones kill a worker and stop everything. The finalizer runs `dev down` whatever happens.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import typer

from shared.db import JobEvent, session_scope
from shared.queue import Queue, send_task
from shared.schemas import PingPayload
from tests.infra import distributed_env, free_port, reset_process_state
from tuneflow._dev_procs import is_alive, port_open
from tuneflow._dev_state import DevState, ProcessRecord, load_state, state_path

pytestmark = pytest.mark.integration

SERVICE_QUEUES = [q for q in Queue if q is not Queue.EVENTS]  # `events` is the consumer that records the pongs


@dataclass
class Topology:
    """A running `dev up`: how it was started and what it recorded."""

    home: Path
    up_args: list[str]
    cli_env: dict[str, str]  # what the `tuneflow dev` commands ran with
    state: DevState
    up_seconds: float
    up_output: str

    def process(self, name: str) -> ProcessRecord:
        """The record of the process called `name`."""
        return next(r for r in self.state.processes if r.spec.name == name)


def run_dev(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `tuneflow dev ...` as a separate process, like a user would."""
    argv = [sys.executable, "-m", "tuneflow.cli", "dev", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


def has_serve_command() -> bool:
    """Whether this build has `tuneflow serve` (the inference server is built separately)."""
    from tuneflow.cli import app

    return "serve" in typer.main.get_command(app).commands  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def topology(
    redis_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Topology]:
    """The platform started by `tuneflow dev up` on the test bed's Redis and database, with its own S3 server."""
    home = tmp_path_factory.mktemp("dev-home")
    env = distributed_env(redis_url=redis_url, database_url=database_url, s3_endpoint="", home=home)
    del env["TUNEFLOW_S3_ENDPOINT"]  # dev up starts an S3 server; its state file says where
    cli_env = {**os.environ, **env}
    # Without `serve` the model is only noted as unused, so any path will do.
    model = request.getfixturevalue("tiny_model_dir") if has_serve_command() else home / "no-model"
    ports = ["--gateway-port", str(free_port()), "--inference-port", str(free_port())]
    up_args = ["--home", str(home), "--model", str(model), *ports]
    started = time.monotonic()
    try:
        result = run_dev("up", *up_args, "--timeout", "120", env=cli_env, timeout=180)
        up_seconds = time.monotonic() - started
        assert result.returncode == 0, result.stdout + result.stderr
        state = load_state(home)
        assert state is not None
        yield Topology(home, up_args, cli_env, state, up_seconds, result.stdout)
    finally:
        run_dev("down", "--home", str(home), env=cli_env, timeout=60)


@pytest.fixture
def platform_env(topology: Topology, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """This test process configured like the topology's processes (distributed, same stores)."""
    tuneflow_env = {k: v for k, v in topology.cli_env.items() if k.startswith("TUNEFLOW_")}  # e.g. the bucket
    for name, value in {**tuneflow_env, **topology.state.env}.items():
        monkeypatch.setenv(name, value)
    reset_process_state()
    yield topology.state.env
    reset_process_state()


def wait_for_events(job_id: str, count: int, timeout_s: float = 30.0) -> list[JobEvent]:
    """The job's recorded events once there are `count` of them (fewer after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with session_scope() as session:
            events = session.query(JobEvent).filter_by(job_id=job_id).all()
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def test_up_starts_every_service_and_records_where(topology: Topology) -> None:
    names = {r.spec.name for r in topology.state.processes}
    assert names >= {"s3", "gateway", *(f"{q.value}-worker" for q in Queue)}
    if has_serve_command():
        assert "inference-server" in names
    else:
        assert "no `tuneflow serve`" in topology.up_output
    assert all(is_alive(r) for r in topology.state.processes)
    assert len({r.pid for r in topology.state.processes}) == len(topology.state.processes)
    assert all(Path(r.log).is_file() for r in topology.state.processes)
    assert topology.state.env["TUNEFLOW_MODE"] == "distributed"
    print(f"\ndev up healthy after {topology.up_seconds:.1f}s; RSS MiB: {_rss_mib(topology)}")


def test_every_service_queue_reaches_its_own_worker_process(topology: Topology, platform_env: dict) -> None:
    job_id = f"dev-up-{uuid.uuid4().hex}"
    for queue in SERVICE_QUEUES:
        send_task(f"{queue.value}.ping", PingPayload(job_id=job_id, message=f"hello {queue.value}"))

    events = wait_for_events(job_id, len(SERVICE_QUEUES))

    by_service = {e.data["service"]: e for e in events}
    assert sorted(by_service) == sorted(q.value for q in SERVICE_QUEUES), [e.message for e in events]
    pids = {service: int(e.data["worker"].rsplit(":", 1)[1]) for service, e in by_service.items()}
    for service, event in by_service.items():
        assert event.message.startswith(f"pong from {service} (") and event.message.endswith(f"hello {service}")
        assert pids[service] == topology.process(f"{service}-worker").pid  # the worker dev up started
    assert os.getpid() not in pids.values()
    assert len(set(pids.values())) == len(SERVICE_QUEUES)


def test_gateway_health_sees_database_broker_and_storage(topology: Topology) -> None:
    response = httpx.get(f"{topology.process('gateway').spec.url}/healthz", timeout=10)

    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert {name: check["ok"] for name, check in checks.items()} == {"database": True, "broker": True, "storage": True}


def test_inference_server_answers_health(topology: Topology) -> None:
    if not has_serve_command():
        pytest.skip("this build has no `tuneflow serve`")
    server = topology.process("inference-server")

    response = httpx.get(f"{server.spec.url}/healthz", timeout=10)

    assert response.status_code == 200, response.text
    assert topology.state.env["TUNEFLOW_INFERENCE_URL"] == server.spec.url


def test_a_training_job_runs_through_real_workers_on_redis_and_s3(
    topology: Topology, platform_env: dict, tiny_model_dir: Path
) -> None:
    """data.prepare -> training.run chained on the broker, run by the worker processes, outputs in S3."""
    from shared.db import Job
    from shared.storage import get_store, object_key
    from tuneflow.train_cmd import split_config, submit_training

    demo_data = Path(__file__).resolve().parents[2] / "tuneflow" / "demo_data"
    prepare, train = split_config(
        {
            "model_name_or_path": str(tiny_model_dir),
            "dataset": "reviews",
            "dataset_dir": str(demo_data),
            "cutoff_len": 128,
            "max_samples": 16,
            "max_steps": 2,
            "logging_steps": 1,
            "per_device_train_batch_size": 4,
        }
    )
    job_id, enqueued = submit_training(prepare, train, "alice")
    enqueued.result(timeout=30)
    deadline = time.monotonic() + 180
    while True:
        with session_scope() as session:
            job = session.get(Job, job_id)
            status, error, worker = job.status, job.error, job.worker
        if status in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == "succeeded", error
    assert int(worker.rsplit(":", 1)[1]) == topology.process("training-worker").pid
    keys = {info.key for info in get_store().list(object_key("alice", "jobs", job_id))}
    assert object_key("alice", "jobs", job_id, "final/adapter_config.json") in keys
    metrics = [e for e in wait_for_events(job_id, 1) if e.type == "metrics" and "loss" in e.data]
    assert len(metrics) >= 2  # logged every step, recorded by the events worker


def test_a_paraphrasing_data_job_runs_through_the_data_and_inference_workers(
    topology: Topology, platform_env: dict, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """`tuneflow data prepare` with a paraphrase model: plan, generate and prepare, each on its service's worker."""
    import json

    import yaml
    from typer.testing import CliRunner

    from shared.storage import get_bytes, get_store
    from tests.data.test_paraphrase import INSTRUCTIONS, write_dataset
    from tuneflow.cli import app

    config = tmp_path / "data.yaml"
    augment = {"paraphrase_model": str(tiny_model_dir), "paraphrase_max_new_tokens": 4}
    values = {"model_name_or_path": str(tiny_model_dir), "dataset": "tiny", "augment": augment}
    config.write_text(yaml.safe_dump({**values, "dataset_dir": str(write_dataset(tmp_path / "data"))}))

    result = CliRunner().invoke(app, ["data", "prepare", "--config", str(config), "--user", "alice"])

    assert result.exit_code == 0, result.output
    dataset_id = json.loads(result.stdout)["dataset_id"]
    manifest = json.loads(get_bytes(get_store(), f"users/alice/datasets/{dataset_id}/manifest.json"))
    # The random-init model never ends a rewrite within 4 tokens: every paraphrase is cut, and left out.
    assert manifest["report"]["paraphrases_dropped"] == {"truncated": len(INSTRUCTIONS)}
    job_id = result.stderr.split("job ", 1)[1].split(":", 1)[0]
    events = {e.message: e for e in wait_for_events(job_id, 9)}  # events reach the recorder asynchronously
    generating = events[f"generating with {tiny_model_dir}"]
    assert int(generating.data["worker"].rsplit(":", 1)[1]) == topology.process("inference-worker").pid
    assert f"planned {len(INSTRUCTIONS)} paraphrase requests" in events
    assert f"generated {len(INSTRUCTIONS)} responses" in events


def test_up_again_says_already_up_and_starts_nothing(topology: Topology) -> None:
    result = run_dev("up", *topology.up_args, env=topology.cli_env, timeout=60)

    assert result.returncode == 0, result.stderr
    assert "already up" in result.stdout
    assert load_state(topology.home) == topology.state


def test_status_reports_a_killed_worker(topology: Topology) -> None:
    victim = topology.process("export-worker")
    psutil.Process(victim.pid).kill()
    _wait_until(lambda: not is_alive(victim))

    result = run_dev("status", "--home", str(topology.home), env=topology.cli_env, timeout=60)

    assert result.returncode == 1
    rows = {line.split()[0]: line.split()[2] for line in result.stdout.splitlines() if line.strip()[:1].islower()}
    assert rows["export-worker"] == "dead"
    assert rows["data-worker"] == rows["gateway"] == "running"


def test_down_stops_every_process_and_frees_the_ports(topology: Topology) -> None:
    result = run_dev("down", "--home", str(topology.home), env=topology.cli_env, timeout=60)

    assert result.returncode == 0, result.stderr
    assert [r.spec.name for r in topology.state.processes if is_alive(r)] == []
    assert [r.spec.port for r in topology.state.processes if r.spec.port and port_open(r.spec.port)] == []
    assert not state_path(topology.home).exists()
    again = run_dev("down", "--home", str(topology.home), env=topology.cli_env, timeout=60)
    assert again.returncode == 0 and "nothing to stop" in again.stdout
    assert run_dev("status", "--home", str(topology.home), env=topology.cli_env, timeout=60).returncode == 1


def _wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _rss_mib(topology: Topology) -> dict[str, int]:
    return {r.spec.name: psutil.Process(r.pid).memory_info().rss >> 20 for r in topology.state.processes}
