"""The server's state: configuration, metrics and the backend that generates (batching scheduler or vLLM)."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from typing import Protocol

from .config import ServeConfig
from .metrics import Metrics
from .model_cache import Backbone, Target
from .sequences import Row

log = logging.getLogger(__name__)


class Backend(Protocol):
    """What the routes need from whatever generates: load a model, queue rows, drop rows, start, drain."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def prepare(self, target: Target) -> Backbone: ...
    def submit(self, rows: list[Row]) -> None: ...
    def cancel(self, rows: list[Row]) -> None: ...


@dataclass
class Server:
    """Everything a request handler needs."""

    config: ServeConfig
    metrics: Metrics
    backend: Backend


def use_vllm(config: ServeConfig) -> bool:
    """Whether to run vLLM: asked for, or `auto` on a CUDA machine where it is installed."""
    if config.engine == "vllm":
        return True
    if config.engine != "auto" or importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def build_server(config: ServeConfig) -> Server:
    """Load the base model and build the backend (this takes as long as loading the model)."""
    metrics = Metrics()
    backend: Backend
    if use_vllm(config):
        from ._vllm import VllmBackend

        log.info("serving %s with vLLM", config.model)
        backend = VllmBackend(config, metrics)
    else:
        from .engine import TransformersEngine
        from .scheduler import BatchScheduler

        backend = BatchScheduler(
            TransformersEngine(config, metrics),
            max_batch_size=config.max_batch_size,
            max_queue=config.max_queue,
            batch_wait_s=config.batch_wait_ms / 1000,
            join_wait_s=config.join_wait_ms / 1000,
            metrics=metrics,
        )
    return Server(config=config, metrics=metrics, backend=backend)
