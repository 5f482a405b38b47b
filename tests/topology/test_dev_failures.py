"""`dev up` that cannot succeed: it says why, shows the log, and leaves nothing running."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.infra import free_port
from tuneflow import _dev_topology
from tuneflow._dev_state import Health, ProcessSpec, load_state, state_path
from tuneflow._dev_topology import TopologyError, TopologyOptions, start_topology

pytestmark = pytest.mark.integration


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A port something accepts connections on, like a service nobody told `dev up` about."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def dev_env(redis_url: str, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test bed's Redis and database, as `dev up` would read them from the environment."""
    monkeypatch.setenv("TUNEFLOW_BROKER_URL", f"{redis_url}/15")
    monkeypatch.setenv("TUNEFLOW_DATABASE_URL", database_url)


def test_a_process_that_never_gets_healthy_is_named_with_its_log_and_everything_stops(
    dev_env: None, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = uuid.uuid4().hex  # finds the process again after dev up gave up on it
    script = f"echo loading a huge model {marker}; sleep 60"
    never_ready = ProcessSpec("never-ready", ["bash", "-c", script], Health.TCP, port=free_port())
    monkeypatch.setattr(_dev_topology, "plan_services", lambda opts: [never_ready])
    opts = TopologyOptions(home=tmp_path, s3_endpoint=s3_endpoint, timeout_s=1)

    with pytest.raises(TopologyError) as failure:
        start_topology(opts, echo=lambda line: None)

    assert "never-ready is not healthy: nothing listens on port" in str(failure.value)
    assert f"loading a huge model {marker}" in str(failure.value)  # the tail of its log
    assert _running_with(marker) == []
    assert load_state(tmp_path) is None and not state_path(tmp_path).exists()


def test_a_taken_gateway_port_is_refused_before_anything_starts(
    dev_env: None, listening_port: int, tmp_path: Path
) -> None:
    opts = TopologyOptions(home=tmp_path, gateway_port=listening_port)

    with pytest.raises(TopologyError, match=f"gateway port {listening_port}"):
        start_topology(opts, echo=lambda line: None)

    assert not state_path(tmp_path).exists()


def test_an_s3_endpoint_that_does_not_answer_is_refused(dev_env: None, tmp_path: Path) -> None:
    opts = TopologyOptions(home=tmp_path, gateway_port=free_port(), s3_endpoint=f"127.0.0.1:{free_port()}")

    with pytest.raises(TopologyError, match="does not answer"):
        start_topology(opts, echo=lambda line: None)


def _running_with(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if marker in " ".join(proc.info["cmdline"] or []) and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found
