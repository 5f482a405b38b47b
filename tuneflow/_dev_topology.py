"""The local topology: which processes `tuneflow dev up` starts, in what order, with what environment."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from shared.queue import Queue
from shared.settings import Settings

from ._dev_health import wait_healthy
from ._dev_procs import free_port, is_alive, log_tail, port_open, spawn, stop
from ._dev_state import DevState, Health, ProcessRecord, ProcessSpec, clear_state, dev_dir, save_state

LOCALHOST = "127.0.0.1"
INFRA = ("redis", "s3")  # started first and stopped last: every service needs them
INFRA_TIMEOUT_S = 20.0  # redis-server and the S3 server listen within a second or two when healthy
# Credentials for the S3 server `dev up` starts itself; moto accepts any, so these guard nothing.
DEV_S3_KEYS = {"TUNEFLOW_S3_ACCESS_KEY": "tuneflow-dev", "TUNEFLOW_S3_SECRET_KEY": "tuneflow-dev-secret"}


class TopologyError(Exception):
    """The topology could not be brought up; the message says which process failed and why."""


@dataclass(frozen=True)
class TopologyOptions:
    """What `dev up` was asked for."""

    home: Path
    gateway_port: int = 8000
    inference_port: int = 8001
    model: str | None = None  # passed to `tuneflow serve` as given; children share our working folder
    serve_available: bool = False  # whether this build has `tuneflow serve` (the inference server)
    s3_endpoint: str = ""  # empty: start an S3 server
    timeout_s: float = 90.0


def cli_argv(*args: str) -> list[str]:
    """How to run a `tuneflow` command in a child process with this interpreter."""
    return [sys.executable, "-m", "tuneflow.cli", *args]


def plan_services(opts: TopologyOptions) -> list[ProcessSpec]:
    """The platform's own processes: gateway, one worker per queue, the inference server if possible."""
    host = socket.gethostname()  # what Celery's `%h` in the worker's node name expands to
    gateway_url = f"http://{LOCALHOST}:{opts.gateway_port}"
    specs = [
        ProcessSpec(
            "gateway",
            cli_argv("gateway", "--host", LOCALHOST, "--port", str(opts.gateway_port)),
            Health.HTTP,
            port=opts.gateway_port,
            url=gateway_url,
        )
    ]
    for queue in Queue:  # `events` first: it records what every other worker emits
        specs.append(
            ProcessSpec(f"{queue.value}-worker", cli_argv("worker", queue.value), Health.CELERY, node=f"{queue}@{host}")
        )
    if opts.model is not None and opts.serve_available:
        specs.append(
            ProcessSpec(
                "inference-server",
                cli_argv(
                    "serve",
                    "--platform",
                    "--model",
                    opts.model,
                    "--host",
                    LOCALHOST,
                    "--port",
                    str(opts.inference_port),
                ),
                Health.HTTP,
                port=opts.inference_port,
                url=f"http://{LOCALHOST}:{opts.inference_port}",
            )
        )
    return specs


def start_topology(opts: TopologyOptions, echo: Callable[[str], None]) -> DevState:
    """Start the S3 server and Redis if needed, migrate the database, start the services, wait for health.

    The state file is written after every start, so `dev down` can clean up even if this is killed.
    On failure everything started is stopped and `TopologyError` names the culprit with its log tail.
    """
    settings = Settings(home=opts.home)
    log_dir = dev_dir(opts.home) / "logs"
    state = DevState()
    specs = plan_services(opts)
    try:
        _refuse_taken_ports([s for s in specs if s.port])
        if opts.s3_endpoint and not _endpoint_answers(opts.s3_endpoint):
            raise TopologyError(f"the S3 endpoint {opts.s3_endpoint} does not answer")
        broker_url = _ensure_broker(settings.broker_url, state, log_dir, echo)
        s3_endpoint = opts.s3_endpoint or _start_s3(state, log_dir, echo)
        state.env = _platform_env(opts, settings, broker_url, s3_endpoint)
        save_state(opts.home, state)
        _fail_if_unhealthy(state, state.processes, broker_url, INFRA_TIMEOUT_S)  # before anything needs them
        _migrate(settings.resolved_database_url, echo)
        env = {**os.environ, **state.env, "PYTHONUNBUFFERED": "1"}  # logs show up as they happen
        for spec in specs:
            state.processes.append(spawn(spec, env, log_dir))
            save_state(opts.home, state)
        echo(f"waiting up to {opts.timeout_s:.0f}s for {len(specs)} processes to become healthy")
        _fail_if_unhealthy(state, state.processes[-len(specs) :], broker_url, opts.timeout_s)
    except BaseException:  # Ctrl-C included: never leave half a topology behind
        stop_topology(state)
        clear_state(opts.home)
        raise
    return state


def stop_topology(state: DevState) -> None:
    """Stop the services, then the infrastructure they were using."""
    stop([r for r in state.processes if r.spec.name not in INFRA])
    stop([r for r in state.processes if r.spec.name in INFRA])


def dead_processes(state: DevState) -> list[ProcessRecord]:
    """The recorded processes that no longer run."""
    return [r for r in state.processes if not is_alive(r)]


def _platform_env(opts: TopologyOptions, settings: Settings, broker_url: str, s3_endpoint: str) -> dict[str, str]:
    """The TUNEFLOW_* variables every child gets, and that a shell exports to talk to the topology."""
    env = {
        "TUNEFLOW_MODE": "distributed",
        "TUNEFLOW_HOME": str(opts.home),
        "TUNEFLOW_DATABASE_URL": settings.resolved_database_url,
        "TUNEFLOW_BROKER_URL": broker_url,
        "TUNEFLOW_STORAGE_BACKEND": "s3",
        "TUNEFLOW_S3_ENDPOINT": s3_endpoint,
        "TUNEFLOW_GATEWAY_URL": f"http://{LOCALHOST}:{opts.gateway_port}",
        "TUNEFLOW_INFERENCE_URL": f"http://{LOCALHOST}:{opts.inference_port}",
    }
    if not opts.s3_endpoint and not settings.s3_access_key:
        env.update(DEV_S3_KEYS)
    return env


def _refuse_taken_ports(specs: list[ProcessSpec]) -> None:
    taken = [s for s in specs if port_open(s.port or 0)]
    if taken:
        names = ", ".join(f"{s.name} port {s.port}" for s in taken)
        raise TopologyError(f"already in use: {names}; stop what holds it or pick other ports (see --help)")


def _ensure_broker(url: str, state: DevState, log_dir: Path, echo: Callable[[str], None]) -> str:
    """The broker URL to use: the configured Redis if it answers, else a `redis-server` started here."""
    if _redis_answers(url):
        return url
    parts = urlsplit(url)
    binary = shutil.which("redis-server")
    if parts.hostname not in (LOCALHOST, "localhost") or binary is None:
        raise TopologyError(f"no Redis answers at {_redact(url)} and there is no local redis-server to start")
    port = free_port()
    echo(f"no Redis at {_redact(url)}; starting redis-server on port {port}")
    argv = [binary, "--port", str(port), "--bind", LOCALHOST, "--save", "", "--appendonly", "no"]
    spec = ProcessSpec("redis", argv, Health.TCP, port=port, url=f"redis://{LOCALHOST}:{port}")
    state.processes.append(spawn(spec, os.environ, log_dir))
    return urlunsplit(parts._replace(netloc=f"{LOCALHOST}:{port}"))  # keeps the db number


def _start_s3(state: DevState, log_dir: Path, echo: Callable[[str], None]) -> str:
    port = free_port()
    echo(f"starting an S3 server (moto) on port {port}")
    argv = [sys.executable, "-m", "moto.server", "--host", LOCALHOST, "--port", str(port)]
    spec = ProcessSpec("s3", argv, Health.TCP, port=port, url=f"http://{LOCALHOST}:{port}")
    state.processes.append(spawn(spec, os.environ, log_dir))
    return f"{LOCALHOST}:{port}"


def _migrate(url: str, echo: Callable[[str], None]) -> None:
    """Migrate once here, so the gateway's own migration is a no-op and a bad URL fails fast."""
    from shared.db import migrate

    echo(f"migrating {_redact(url)}")
    try:
        migrate(url)
    except Exception as exc:  # any driver error: report it as the reason dev up stopped
        raise TopologyError(f"migrating {_redact(url)} failed: {type(exc).__name__}: {exc}") from exc


def _fail_if_unhealthy(state: DevState, records: list[ProcessRecord], broker_url: str, timeout_s: float) -> None:
    failures = wait_healthy(records, broker_url, timeout_s)
    if not failures:
        return
    by_name = {r.spec.name: r for r in state.processes}
    report = [
        f"{name} is not healthy: {why}\n--- last lines of {by_name[name].log} ---\n{log_tail(by_name[name])}"
        for name, why in failures.items()
    ]
    raise TopologyError("\n\n".join(report))


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping())
    except (redis.exceptions.RedisError, ValueError):
        return False


def _endpoint_answers(endpoint: str) -> bool:
    host, _, port = endpoint.rpartition(":")
    return port.isdigit() and port_open(int(port), host or LOCALHOST)


def _redact(url: str) -> str:
    """`url` without its password, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))
