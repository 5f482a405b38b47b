"""Starting and stopping the topology's processes: plain subprocesses, one process group each."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import psutil

from ._dev_state import ProcessRecord, ProcessSpec

# psutil derives create_time from boot time and clock ticks; allow for rounding between two readers.
_CREATE_TIME_SLACK_S = 1.0


def spawn(spec: ProcessSpec, env: Mapping[str, str], log_dir: Path) -> ProcessRecord:
    """Start `spec` in a session of its own, its output going to `<log_dir>/<name>.log`.

    A new session makes the process lead its own group (so `stop` reaches its children too) and
    detaches it from the terminal, so it outlives `dev up` and ignores the terminal's Ctrl-C.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{spec.name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        )
    return ProcessRecord(spec=spec, pid=proc.pid, create_time=psutil.Process(proc.pid).create_time(), log=str(log))


def is_alive(record: ProcessRecord) -> bool:
    """Whether the recorded process still runs (a zombie or a reused pid counts as gone)."""
    try:
        proc = psutil.Process(record.pid)
        return _same_start(proc, record) and _running(proc)
    except psutil.NoSuchProcess:
        return False


def stop(records: Iterable[ProcessRecord], grace_s: float = 10.0) -> None:
    """Stop every record's process group: SIGTERM, then SIGKILL for whatever outlives `grace_s`."""
    procs = [p for record in records for p in _group(record)]
    for proc in procs:
        _signal(proc, signal.SIGTERM)
    left = _wait_gone(procs, grace_s)
    for proc in left:
        _signal(proc, signal.SIGKILL)
    _wait_gone(left, 5.0)


def log_tail(record: ProcessRecord, lines: int = 20) -> str:
    """The last `lines` lines of the process's log."""
    try:
        text = Path(record.log).read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on `host:port`."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def _running(proc: psutil.Process) -> bool:
    # Nobody may reap an orphan that exited (PID 1 in a container often does not), so a zombie is gone.
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Poll until every process is gone or `timeout_s` passes; the ones still running.

    Not `psutil.wait_procs`: it waits on zombies, and these are mostly not our children to reap.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        left = [p for p in procs if _running(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def _same_start(proc: psutil.Process, record: ProcessRecord) -> bool:
    return abs(proc.create_time() - record.create_time) < _CREATE_TIME_SLACK_S


def _group(record: ProcessRecord) -> list[psutil.Process]:
    """The live processes of the group the record's process leads, even if the leader itself is gone."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) != record.pid:
                continue
            if proc.pid == record.pid and not _same_start(proc, record):
                return []  # the pid now belongs to someone else's group leader
            if proc.create_time() >= record.create_time - _CREATE_TIME_SLACK_S and _running(proc):
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def _signal(proc: psutil.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):  # it exited meanwhile
        proc.send_signal(sig)  # psutil refuses to signal a process whose pid was reused
