"""The real-infrastructure test bed: Redis, PostgreSQL (or SQLite), an S3 server, process-wide resets."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    """Block until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextmanager
def redis_server() -> Iterator[str]:
    """The machine's Redis on 6379 if it answers, else a private `redis-server` on a free port."""
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1).ping()
        yield "redis://127.0.0.1:6379"
        return
    except redis.exceptions.ConnectionError:
        pass
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("no Redis on 127.0.0.1:6379 and no redis-server binary to start one")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def postgres_database() -> Iterator[str | None]:
    """A fresh, dropped-afterwards database on the local PostgreSQL; None when none answers."""
    import psycopg

    admin = "postgresql://postgres@127.0.0.1:5432/test"
    name = f"tuneflow_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        yield None
        return
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        from shared.db import reset_engine

        reset_engine()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def s3_server() -> Iterator[str]:
    """A real S3-protocol server (moto) in this process, as `host:port`."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        wait_for_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: two threads on two shared, busy cores run a tiny model several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def reset_process_state() -> None:
    """Forget every process-wide cache so new TUNEFLOW_* settings take effect."""
    from shared import queue
    from shared.db import reset_engine
    from shared.settings import get_settings
    from shared.storage import get_store

    get_settings.cache_clear()
    get_store.cache_clear()
    reset_engine()
    queue._app = None  # noqa: SLF001 - tests switch modes between cases


def distributed_env(*, redis_url: str, database_url: str, s3_endpoint: str, home: Path) -> dict[str, str]:
    """TUNEFLOW_* variables for a distributed platform on the test bed."""
    db = int(uuid.uuid4().int % 14) + 1  # a Redis db of its own, so parallel runs do not share queues
    return {
        "TUNEFLOW_MODE": "distributed",
        "TUNEFLOW_HOME": str(home),
        "TUNEFLOW_DATABASE_URL": database_url,
        "TUNEFLOW_BROKER_URL": f"{redis_url}/{db}",
        "TUNEFLOW_STORAGE_BACKEND": "s3",
        "TUNEFLOW_S3_ENDPOINT": s3_endpoint,
        "TUNEFLOW_S3_ACCESS_KEY": "testing",
        "TUNEFLOW_S3_SECRET_KEY": "testing",
        "TUNEFLOW_S3_BUCKET": f"tuneflow-{uuid.uuid4().hex[:8]}",
    }


@dataclass
class Served:
    """An ASGI app running in uvicorn: where to reach it, and uvicorn's handle (to ask it to exit)."""

    url: str
    uvicorn: Any


@contextmanager
def serve_in_thread(app: Any, timeout_s: float = 60.0) -> Iterator[Served]:
    """Serve `app` with uvicorn on a free port in a background thread; shut it down gracefully afterwards."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start within {timeout_s}s")
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        thread.join(timeout_s)
