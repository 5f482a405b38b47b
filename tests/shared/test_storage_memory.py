"""A 50 MB object streams up and down through both backends in bounded memory (issue 2, Done when)."""

from __future__ import annotations

import gc
import hashlib
import os
import subprocess
import sys
import threading
import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from shared.settings import Settings
from shared.storage import ObjectKind, ObjectStore, create_store, download_file, object_key, put_bytes
from tests.infra import free_port, wait_for_port

OBJECT_BYTES = 50 * 1024 * 1024
MAX_GROWTH_BYTES = 64 * 1024 * 1024
MB = 1024 * 1024


class GeneratedStream:
    """A read-only file of `size` random bytes, made as they are read, hashed on the way.

    The test must not hold the 50 MB itself, or it would measure its own buffer.
    """

    def __init__(self, size: int):
        self.remaining = size
        self.sha256 = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        n = self.remaining if n < 0 else min(n, self.remaining)
        chunk = os.urandom(n)  # random.randbytes would build an n-byte int first, doubling what we measure
        self.remaining -= n
        self.sha256.update(chunk)
        return chunk


class PeakRss:
    """Samples this process's resident memory in a background thread; `growth` is peak minus start.

    Memory freed by an earlier step may stay in the process and be reused, hiding a later step's
    growth from RSS; so `traced_peak`, the peak of Python allocations made inside the block
    (tracemalloc), is measured as well.
    """

    def __init__(self, interval_s: float = 0.001):
        self.interval_s = interval_s
        self.process = psutil.Process()
        self.start = self.peak = self.traced_peak = 0
        self._stop = threading.Event()

    @property
    def growth(self) -> int:
        return self.peak - self.start

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, self.process.memory_info().rss)

    @contextmanager
    def measure(self) -> Iterator[PeakRss]:
        gc.collect()
        self.start = self.peak = self.process.memory_info().rss
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        tracemalloc.start()
        try:
            yield self
        finally:
            self.traced_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            self._stop.set()
            thread.join()
            self.peak = max(self.peak, self.process.memory_info().rss)


@pytest.fixture(scope="module")
def s3_subprocess_endpoint() -> Iterator[str]:
    """An S3 server in a child process.

    The shared `s3_endpoint` server runs inside the test process and buffers every object there
    (about 320 MB of growth for this upload when tried), which would count as ours. In a child
    process only the client side, our code, is measured.
    """
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=60)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return create_store(Settings(storage_backend="local", storage_path=tmp_path / "objects"))
    return create_store(
        Settings(
            storage_backend="s3",
            s3_endpoint=request.getfixturevalue("s3_subprocess_endpoint"),
            s3_access_key="testing",
            s3_secret_key="testing",
            s3_bucket=f"test-{uuid.uuid4().hex[:12]}",
        )
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(MB):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.integration
def test_50mb_object_streams_up_and_down_in_bounded_memory(
    store: ObjectStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    key = object_key("alice", ObjectKind.MODELS, "big-1", "model.safetensors")
    # Warm up first, so imports and connection pools made on first use do not count as growth.
    put_bytes(store, object_key("alice", ObjectKind.MODELS, "warm-up", "x"), b"x" * MB)
    download_file(store, object_key("alice", ObjectKind.MODELS, "warm-up", "x"), tmp_path / "warm-up")

    source = GeneratedStream(OBJECT_BYTES)
    with PeakRss().measure() as up:
        store.put_stream(key, source, OBJECT_BYTES)  # type: ignore[arg-type]
    with PeakRss().measure() as down:
        download_file(store, key, tmp_path / "model.safetensors")

    backend = request.node.callspec.params["store"]
    print(
        f"\n{backend}: peak RSS growth up {up.growth / MB:.1f} MB, down {down.growth / MB:.1f} MB; "
        f"traced peak up {up.traced_peak / MB:.1f} MB, down {down.traced_peak / MB:.1f} MB"
    )
    assert source.remaining == 0
    assert store.stat(key).size == OBJECT_BYTES
    assert _file_sha256(tmp_path / "model.safetensors") == source.sha256.hexdigest()
    assert up.growth < MAX_GROWTH_BYTES, f"upload grew RSS by {up.growth / MB:.1f} MB"
    assert down.growth < MAX_GROWTH_BYTES, f"download grew RSS by {down.growth / MB:.1f} MB"
    assert max(up.traced_peak, down.traced_peak) < MAX_GROWTH_BYTES
