"""Continuous batching: requests queue here; the engine thread starts batches and tops them up between steps."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from .engine import TransformersEngine
from .metrics import Metrics
from .model_cache import Backbone, Target
from .sequences import QueueFull, Row, Update

log = logging.getLogger(__name__)
T = TypeVar("T")


class BatchScheduler:
    """Holds waiting rows; starts a batch after `batch_wait_s`, and feeds it new rows as seats free up.

    One engine thread does all model work, so the model is never used by two threads at once and the
    event loop stays free to stream text while a batch decodes. Adapter loads are queued as chores the
    engine runs between steps, so a request for a new adapter never waits for a busy batch to drain.
    The row queue is shared with that thread, hence the lock.
    """

    def __init__(
        self,
        engine: TransformersEngine,
        *,
        max_batch_size: int,
        max_queue: int,
        batch_wait_s: float,
        join_wait_s: float,
        metrics: Metrics,
    ) -> None:
        self.engine = engine
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        self.batch_wait_s = batch_wait_s
        self.join_wait_s = join_wait_s
        self.metrics = metrics
        self._pending: deque[tuple[float, Row]] = deque()
        self._lock = threading.Lock()
        self._wake = asyncio.Event()
        self._closing = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="inference-engine")
        self._task: asyncio.Task[None] | None = None
        self._chores: queue.SimpleQueue[tuple[Future[Any], Callable[[Any], Any], Any]] = queue.SimpleQueue()
        self._session_rows: list[Row] = []  # every row handed to the engine since it last went idle

    async def start(self) -> None:
        """Start the batching loop on the running event loop (again after `stop`, for a restarted app)."""
        if self._closing:
            self._closing = False
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="inference-engine")
        self._wake = asyncio.Event()  # an Event belongs to the loop it is first awaited on
        self._task = asyncio.create_task(self._run(), name="inference-batcher")

    async def stop(self) -> None:
        """Refuse new work, finish every admitted row, then stop the engine thread."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    async def prepare(self, target: Target) -> Backbone:
        """Load `target` on the engine thread, between decode steps, and return its backbone."""
        if target.source is None:
            return self.engine.cache.base  # always loaded; no need to wait for a step boundary
        chore: Future[Backbone] = Future()
        self._chores.put((chore, self.engine.prepare, target))
        self._wake.set()
        return await asyncio.wrap_future(chore)

    def _do_chores(self) -> None:
        """Run queued model chores (adapter loads); on the engine thread, between steps or while idle."""
        while True:
            try:
                chore, fn, arg = self._chores.get_nowait()
            except queue.Empty:
                return
            if chore.set_running_or_notify_cancel():
                try:
                    chore.set_result(fn(arg))
                except Exception as exc:  # the request that asked gets the error
                    chore.set_exception(exc)

    def submit(self, rows: list[Row]) -> None:
        """Queue a request's rows; raises QueueFull when they do not fit."""
        if self._closing:
            raise QueueFull("the server is shutting down")
        with self._lock:
            if len(self._pending) + len(rows) > self.max_queue:
                self.metrics.rejected.inc()
                raise QueueFull(f"{len(self._pending)} sequences are waiting (limit {self.max_queue})")
            now = time.monotonic()
            self._pending.extend((now, row) for row in rows)
            self.metrics.queue_depth.set(len(self._pending))
        self._wake.set()

    def cancel(self, rows: list[Row]) -> None:
        """Drop a request whose client went away: waiting rows leave the queue, running rows their batch."""
        for row in rows:
            row.cancelled = True
        with self._lock:
            self._pending = deque(item for item in self._pending if not item[1].cancelled)
            self.metrics.queue_depth.set(len(self._pending))

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _run(self) -> None:
        while self._pending or not self._chores.empty() or not self._closing:
            if not self._chores.empty():
                await self._call(self._do_chores)
                continue
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._hold_open()
            first = self._take(self.max_batch_size, self._pending[0][1].group, frozenset()) if self._pending else []
            if first:  # every waiting client may have left meanwhile
                await self._run_session(first)

    def _top_up(self, room: int, group: str, in_use: frozenset[str]) -> list[Row]:
        """Rows to join the running batch (engine thread), once joining is worth its cost.

        Each join costs the running rows an extra prefill forward. It is worth it at once when the
        waiting rows would fill the batch or at least double it; otherwise they gather for up to
        `join_wait_s`, so one prefill serves several of them.
        """
        running = self.max_batch_size - room
        with self._lock:
            ready = bool(self._pending) and (
                len(self._pending) >= min(room, running) or time.monotonic() - self._pending[0][0] >= self.join_wait_s
            )
        return self._take(room, group, in_use) if ready else []

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

    def _take(self, room: int, group: str, in_use: frozenset[str]) -> list[Row]:
        """Up to `room` waiting rows of `group`, oldest first, within the adapter cache's room.

        Called on the event loop to start a batch and on the engine thread to top one up.
        """
        taken: list[Row] = []
        targets = set(in_use)
        with self._lock:
            rest: deque[tuple[float, Row]] = deque()
            for item in self._pending:
                row = item[1]
                fits = len(taken) < room and row.group == group
                # Every adapter a batch uses must be loaded at once, so never more than the cache holds.
                if fits and row.target.source is not None and row.target.name not in targets:
                    fits = len(targets) < self.engine.cache.capacity
                    if fits:
                        targets.add(row.target.name)
                if fits:
                    taken.append(row)
                else:
                    rest.append(item)
            self._pending = rest
            self.metrics.queue_depth.set(len(rest))
        self._session_rows.extend(taken)
        return taken

    async def _run_session(self, first: list[Row]) -> None:
        loop = asyncio.get_running_loop()

        def emit(updates: list[Update]) -> None:  # called on the engine thread
            loop.call_soon_threadsafe(_deliver, updates)

        try:
            await self._call(self.engine.run, first, self._top_up, self._do_chores, emit)
        except Exception as exc:  # one bad batch must not take the server down
            log.exception("decoding failed")
            failed = [row for row in self._session_rows if not row.cancelled]
            _deliver([Update(row, "", "error", error=f"generation failed: {exc}") for row in failed])
        finally:
            self._session_rows.clear()


def _deliver(updates: list[Update]) -> None:
    for update in updates:
        update.row.sink.put_nowait(update)
