"""Dynamic batching: an asyncio loop gathers waiting rows into batches the engine runs in its own thread."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .engine import TransformersEngine
from .metrics import Metrics
from .model_cache import Backbone, Target
from .sequences import Row, Update

log = logging.getLogger(__name__)
T = TypeVar("T")


class QueueFull(Exception):
    """The server is saturated (or shutting down); the client should retry later."""


class BatchScheduler:
    """Collects rows for up to `batch_wait_s`, then runs the largest batch one group allows.

    One engine thread does all model work (batches and adapter loads), so the model is never used by
    two threads at once and the event loop stays free to stream tokens while a batch decodes.
    """

    def __init__(
        self, engine: TransformersEngine, *, max_batch_size: int, max_queue: int, batch_wait_s: float, metrics: Metrics
    ) -> None:
        self.engine = engine
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        self.batch_wait_s = batch_wait_s
        self.metrics = metrics
        self._pending: deque[tuple[float, Row]] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="inference-engine")
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Start the batching loop on the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="inference-batcher")

    async def stop(self) -> None:
        """Refuse new work, finish every admitted row, then stop the engine thread."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    async def prepare(self, target: Target) -> Backbone:
        """Load `target` on the engine thread (between batches) and return its backbone."""
        return await self._call(self.engine.prepare, target)

    def submit(self, rows: list[Row]) -> None:
        """Queue a request's rows; raises QueueFull when they do not fit."""
        if self._closing:
            raise QueueFull("the server is shutting down")
        if len(self._pending) + len(rows) > self.max_queue:
            self.metrics.rejected.inc()
            raise QueueFull(f"{len(self._pending)} sequences are waiting (limit {self.max_queue})")
        now = time.monotonic()
        self._pending.extend((now, row) for row in rows)
        self.metrics.queue_depth.set(len(self._pending))
        self._wake.set()

    def cancel(self, rows: list[Row]) -> None:
        """Drop a request whose client went away: waiting rows leave the queue, running rows stop."""
        for row in rows:
            row.cancelled = True
        self._pending = deque(item for item in self._pending if not item[1].cancelled)
        self.metrics.queue_depth.set(len(self._pending))

    @property
    def waiting(self) -> int:
        """Rows waiting for a batch."""
        return len(self._pending)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _run(self) -> None:
        while self._pending or not self._closing:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._hold_open()
            if self._pending:  # every waiting client may have left meanwhile
                await self._run_batch(self._take_batch())

    async def _hold_open(self) -> None:
        """Wait until a full batch is waiting or the oldest row has waited `batch_wait_s`."""
        deadline = self._pending[0][0] + self.batch_wait_s
        while self._pending and len(self._pending) < self.max_batch_size and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    def _take_batch(self) -> list[Row]:
        """The oldest row's group, in arrival order, up to the batch size and the adapter cache's room."""
        group = self._pending[0][1].group
        batch: list[Row] = []
        targets: set[str] = set()
        rest: deque[tuple[float, Row]] = deque()
        for item in self._pending:
            row = item[1]
            fits = len(batch) < self.max_batch_size and row.group == group
            # Every adapter of a batch must be loaded at once, so never more than the cache holds.
            new_target = row.target.source is not None and row.target.name not in targets
            if fits and new_target and len(targets) >= self.engine.cache.capacity:
                fits = False
            if fits:
                batch.append(row)
                if row.target.source is not None:
                    targets.add(row.target.name)
            else:
                rest.append(item)
        self._pending = rest
        self.metrics.queue_depth.set(len(rest))
        return batch

    async def _run_batch(self, batch: list[Row]) -> None:
        loop = asyncio.get_running_loop()

        def emit(updates: list[Update]) -> None:  # called on the engine thread
            loop.call_soon_threadsafe(_deliver, updates)

        self.metrics.running.set(len(batch))
        try:
            await self._call(self.engine.run_batch, batch, emit)
        except Exception as exc:  # one bad batch must not take the server down
            log.exception("batch of %d rows failed", len(batch))
            _deliver([Update(row, "", "error", error=f"generation failed: {exc}") for row in batch])
        finally:
            self.metrics.running.set(0)


def _deliver(updates: list[Update]) -> None:
    for update in updates:
        update.row.sink.put_nowait(update)
