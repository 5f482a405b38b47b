"""The process plumbing under `tuneflow dev`: groups, stale pids, the state file, health waits."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.infra import free_port
from tuneflow._dev_health import wait_healthy
from tuneflow._dev_procs import is_alive, spawn, stop
from tuneflow._dev_state import DevState, Health, ProcessRecord, ProcessSpec, load_state, save_state, state_path


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[ProcessRecord]]:
    """Records of the processes a test spawns; whatever is left is stopped afterwards."""
    records: list[ProcessRecord] = []
    yield records
    stop(records, grace_s=2)


def start(records: list[ProcessRecord], tmp_path: Path, name: str, script: str, port: int = 0) -> ProcessRecord:
    """Spawn `bash -c script` (healthy once `port` accepts connections) and remember it for clean-up."""
    record = spawn(ProcessSpec(name, ["bash", "-c", script], Health.TCP, port=port), os.environ, tmp_path)
    records.append(record)
    return record


def group_members(pgid: int) -> list[psutil.Process]:
    """Running processes in process group `pgid`."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll `condition` until it holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_stop_ends_the_whole_group_including_children(started: list[ProcessRecord], tmp_path: Path) -> None:
    record = start(started, tmp_path, "parent", "sleep 60 & sleep 60 & wait")
    wait_for(lambda: len(group_members(record.pid)) == 3)

    stop([record], grace_s=5)

    assert not is_alive(record)
    assert group_members(record.pid) == []


def test_stop_reaches_children_whose_leader_already_died(started: list[ProcessRecord], tmp_path: Path) -> None:
    record = start(started, tmp_path, "orphaning", "sleep 60 & exit 0")
    wait_for(lambda: not is_alive(record) and len(group_members(record.pid)) == 1)

    stop([record], grace_s=5)

    assert group_members(record.pid) == []


def test_a_pid_with_another_start_time_is_not_ours(started: list[ProcessRecord], tmp_path: Path) -> None:
    record = start(started, tmp_path, "stranger", "sleep 60")
    impostor = dataclasses.replace(record, create_time=record.create_time - 100)  # as if the pid were reused

    stop([impostor], grace_s=1)

    assert not is_alive(impostor)
    assert is_alive(record)  # stop left the process that merely shares the pid alone


def test_state_round_trips_and_an_unreadable_file_is_no_state(tmp_path: Path) -> None:
    spec = ProcessSpec("gateway", ["x"], Health.HTTP, port=1, url="http://127.0.0.1:1")
    state = DevState([ProcessRecord(spec, pid=42, create_time=1.5, log="/l")], env={"TUNEFLOW_MODE": "distributed"})

    save_state(tmp_path, state)

    assert load_state(tmp_path) == state
    assert state_path(tmp_path).stat().st_mode & 0o777 == 0o600
    state_path(tmp_path).write_text("{not json")
    assert load_state(tmp_path) is None


def test_wait_healthy_names_what_exited_and_what_never_got_ready(started: list[ProcessRecord], tmp_path: Path) -> None:
    crashed = start(started, tmp_path, "crashed", "exit 3")
    silent = start(started, tmp_path, "silent", "sleep 60", port=free_port())
    wait_for(lambda: not is_alive(crashed))

    assert wait_healthy([crashed, silent], "memory://", timeout_s=1) == {"crashed": "exited"}
    began = time.monotonic()
    assert wait_healthy([silent], "memory://", timeout_s=1) == {"silent": f"nothing listens on port {silent.spec.port}"}
    assert time.monotonic() - began < 5
