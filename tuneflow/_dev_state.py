"""What `tuneflow dev up` started, kept in `<home>/dev/state.json` so `down` and `status` can find it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path


class Health(StrEnum):
    """How to tell that a process is ready."""

    HTTP = "http"  # GET <url>/healthz answers 200
    CELERY = "celery"  # the worker node answers a Celery control ping
    TCP = "tcp"  # something accepts connections on the port


@dataclass(frozen=True)
class ProcessSpec:
    """One process of the topology, before it runs."""

    name: str
    argv: list[str]
    health: Health
    port: int | None = None
    url: str = ""
    node: str = ""  # Celery node name, for workers


@dataclass(frozen=True)
class ProcessRecord:
    """A started process: its spec plus what identifies it on this machine."""

    spec: ProcessSpec
    pid: int
    create_time: float  # with the pid, tells our process from a later one that reused its pid
    log: str


@dataclass
class DevState:
    """Everything one `dev up` started and the environment that talks to it."""

    processes: list[ProcessRecord] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def dev_dir(home: Path) -> Path:
    """The folder holding the state file and the logs."""
    return home / "dev"


def state_path(home: Path) -> Path:
    """Where the state file lives."""
    return dev_dir(home) / "state.json"


def save_state(home: Path, state: DevState) -> None:
    """Write the state file atomically, readable by the owner only (it may hold credentials)."""
    path = state_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(state), out, indent=2)
    tmp.replace(path)


def load_state(home: Path) -> DevState | None:
    """The recorded state, or None when nothing was started (or the file is unreadable)."""
    try:
        raw = json.loads(state_path(home).read_text())
        processes = [
            ProcessRecord(
                spec=ProcessSpec(**{**p["spec"], "health": Health(p["spec"]["health"])}),
                pid=p["pid"],
                create_time=p["create_time"],
                log=p["log"],
            )
            for p in raw["processes"]
        ]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return DevState(processes=processes, env=raw.get("env", {}))


def clear_state(home: Path) -> None:
    """Forget the recorded state."""
    state_path(home).unlink(missing_ok=True)
