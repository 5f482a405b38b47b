"""The optional vLLM backend, used on CUDA machines where vLLM is installed (`pip install .[gpu]`).

vLLM does its own continuous batching and multi-LoRA serving, so this backend only translates rows
to vLLM requests and vLLM's cumulative outputs back to row updates. Imported only when chosen:
vLLM pulls CUDA builds and cannot be installed on CPU machines.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from shared.modelkit import load_tokenizer, resolve_model_source

from .config import ServeConfig
from .metrics import Metrics
from .model_cache import BASE_GROUP, Backbone, Target
from .sequences import Row, Update


class VllmBackend:
    """Rows in, updates out, through vLLM's `AsyncLLMEngine` with LoRA enabled."""

    def __init__(self, config: ServeConfig, metrics: Metrics) -> None:
        from transformers import GenerationConfig
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        self.config = config
        self.metrics = metrics
        source = resolve_model_source(config.model)
        self.engine = AsyncLLMEngine.from_engine_args(
            AsyncEngineArgs(
                model=source, enable_lora=True, max_loras=config.adapter_cache, max_num_seqs=config.max_batch_size
            )
        )
        try:
            generation = GenerationConfig.from_pretrained(source)
        except OSError:  # a model without generation_config.json decodes with the library defaults
            generation = GenerationConfig()
        tokenizer = load_tokenizer(source)
        positions = self.engine.vllm_config.model_config.max_model_len
        self.base = Backbone(
            SimpleNamespace(generation_config=generation), tokenizer, frozenset(), positions, BASE_GROUP
        )
        self._lora_ids: dict[str, Any] = {}
        self._next_id = itertools.count(1)
        self._tasks: dict[Row, tuple[str, asyncio.Task[None]]] = {}

    async def start(self) -> None:
        """Nothing to start: vLLM runs its loop on first use."""

    async def stop(self) -> None:
        """Let admitted rows finish, then shut vLLM down."""
        if self._tasks:
            await asyncio.gather(*(task for _, task in self._tasks.values()), return_exceptions=True)
        self.engine.shutdown()

    async def prepare(self, target: Target) -> Backbone:
        """Resolve an adapter's files (vLLM loads them itself on first use); exported models are refused."""
        if target.source is None or target.name in self._lora_ids:
            return self.base
        from vllm.lora.request import LoRARequest

        path = Path(await asyncio.to_thread(resolve_model_source, target.source))
        if not (path / "adapter_config.json").exists():
            raise ValueError("the vLLM engine serves adapters of its base model only, not exported models")
        self._lora_ids[target.name] = LoRARequest(target.name, next(self._next_id), str(path))
        return self.base

    def submit(self, rows: list[Row]) -> None:
        """Start a vLLM request per row."""
        for row in rows:
            request_id = uuid.uuid4().hex
            self._tasks[row] = (request_id, asyncio.create_task(self._run(row, request_id)))

    def cancel(self, rows: list[Row]) -> None:
        """Abort rows whose client went away."""
        for row in rows:
            row.cancelled = True
            if row in self._tasks:
                asyncio.create_task(self.engine.abort(self._tasks[row][0]))

    async def _run(self, row: Row, request_id: str) -> None:
        from vllm import SamplingParams

        p = row.params
        params = SamplingParams(
            max_tokens=p.max_tokens, temperature=p.temperature, top_p=p.top_p, seed=p.seed, stop=list(p.stop) or None
        )
        lora = self._lora_ids.get(row.target.name) if row.target.source else None
        sent = 0
        try:
            prompt = {"prompt_token_ids": row.prompt_ids}
            async for output in self.engine.generate(prompt, params, request_id, lora_request=lora):
                choice = output.outputs[0]
                row.completion_tokens = len(choice.token_ids)
                reason = choice.finish_reason if output.finished else None
                row.sink.put_nowait(Update(row, choice.text[sent:], reason))
                sent = len(choice.text)
                if output.finished:
                    self.metrics.generated_tokens.inc(row.completion_tokens)
        except Exception as exc:  # report to the request instead of losing the task's error
            row.sink.put_nowait(Update(row, "", "error", error=f"generation failed: {exc}"))
        finally:
            self._tasks.pop(row, None)
