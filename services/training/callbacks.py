"""Trainer callbacks: live metrics (events, TensorBoard, trainer_log.jsonl), cooperative stop, store sync."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any, Literal, cast

import psutil
from transformers import TrainerCallback

from shared.events import emit_metrics
from shared.storage import get_store

from .checkpoints import upload_checkpoint

STOP_POLL_S = 0.5  # how stale a cancel request or a takeover may be before a step boundary notices it


def process_memory_mb() -> dict[str, float]:
    """Resident memory of this process, and accelerator memory where there is one."""
    import torch

    memory = {"rss_mb": psutil.Process().memory_info().rss / 2**20}
    if torch.cuda.is_available():
        memory["gpu_allocated_mb"] = torch.cuda.memory_allocated() / 2**20
        memory["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        with contextlib.suppress(Exception):  # needs pynvml; the other numbers still matter without it
            memory["gpu_utilization"] = float(torch.cuda.utilization())
    return memory


class MetricsCallback(TrainerCallback):
    """Every `logging_steps`: one line in trainer_log.jsonl, TensorBoard scalars and a metrics event."""

    def __init__(self, job_id: str, logs_dir: Path, samples_per_step: int) -> None:
        self.job_id = job_id
        self.samples_per_step = samples_per_step
        self.logs_dir = logs_dir
        self.jsonl = logs_dir / "trainer_log.jsonl"
        self.writer: Any = None  # rank 0 only, so data-parallel runs write one event file
        self._mark: tuple[float, int, int] | None = None  # (time, step, tokens) at the last log
        self._start: tuple[float, int] | None = None

    def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.is_world_process_zero:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.logs_dir / "tensorboard"))
        self._start = (time.monotonic(), state.global_step)
        self._mark = (time.monotonic(), state.global_step, state.num_input_tokens_seen)

    def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
        if not state.is_world_process_zero or not logs or "loss" not in logs or self._mark is None:
            return
        now = time.monotonic()
        then, step0, tokens0 = self._mark
        elapsed = max(now - then, 1e-9)
        steps_done = state.global_step - self._start[1]
        per_step = (now - self._start[0]) / max(steps_done, 1)
        record: dict[str, Any] = {
            "step": state.global_step,
            "max_steps": state.max_steps,
            "epoch": round(state.epoch or 0.0, 4),
            "loss": logs["loss"],
            "learning_rate": logs.get("learning_rate"),
            "grad_norm": logs.get("grad_norm"),
            "tokens_per_s": (state.num_input_tokens_seen - tokens0) / elapsed,
            "samples_per_s": (state.global_step - step0) * self.samples_per_step / elapsed,
            "tokens_seen": state.num_input_tokens_seen,
            "progress": state.global_step / max(state.max_steps, 1),
            "eta_s": per_step * (state.max_steps - state.global_step),
            **process_memory_mb(),
        }
        self._mark = (now, state.global_step, state.num_input_tokens_seen)
        with self.jsonl.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        for name, value in record.items():
            if isinstance(value, int | float) and name not in ("step", "max_steps"):
                self.writer.add_scalar(f"train/{name}", value, state.global_step)
        self.writer.flush()
        emit_metrics(self.job_id, record)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # type: ignore[no-untyped-def]
        if not state.is_world_process_zero or not metrics:
            return
        record = {"step": state.global_step, **metrics}
        with self.jsonl.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        for name, value in metrics.items():
            if isinstance(value, int | float):
                self.writer.add_scalar(name.replace("eval_", "eval/"), value, state.global_step)
        emit_metrics(self.job_id, record)

    def on_train_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if self.writer is not None:
            self.writer.close()


StopReason = Literal["cancelled", "lease_lost"]


class StopCallback(TrainerCallback):
    """Stops training at the first step boundary after the job was cancelled or taken over by another worker.

    Rank 0 reads the job's record and broadcasts the decision, so every data-parallel process stops at the
    same step (a process left waiting in an all-reduce would hang the job). `reason` says why it stopped.
    """

    REASONS: tuple[StopReason | None, ...] = (None, "cancelled", "lease_lost")  # broadcast as their index

    def __init__(self, job_id: str, worker: str) -> None:
        self.job_id = job_id
        self.worker = worker
        self.reason: StopReason | None = None
        self._last_poll = 0.0

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        import torch.distributed as dist

        from shared.db.jobs import stop_reason

        reason: StopReason | None = None
        if state.is_world_process_zero and time.monotonic() - self._last_poll >= STOP_POLL_S:
            self._last_poll = time.monotonic()
            reason = cast("StopReason | None", stop_reason(self.job_id, self.worker))
        if dist.is_available() and dist.is_initialized():
            import torch

            code = torch.tensor([self.REASONS.index(reason)])
            dist.broadcast(code, src=0)
            reason = self.REASONS[int(code.item())]
        if reason is not None:
            self.reason = reason
            control.should_training_stop = True
            control.should_save = False  # a stopped run leaves nothing half-done behind
            control.should_log = False
            control.should_evaluate = False
        return control


class StoreSyncCallback(TrainerCallback):
    """Uploads each checkpoint the Trainer writes to the job's prefix in the object store."""

    def __init__(self, job_prefix: str, logs_dir: Path) -> None:
        self.job_prefix = job_prefix
        self.logs_dir = logs_dir

    def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            upload_checkpoint(get_store(), self.job_prefix, folder, self.logs_dir)
