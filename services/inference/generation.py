"""What both completion endpoints share: admitting prompts as rows, reading their updates, SSE framing."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel

from .access import Caller, off_the_loop, resolve_model
from .errors import APIError, bad_request
from .model_cache import Backbone, Target
from .sampling import SamplingParams
from .schemas import SamplingFields, Usage
from .sequences import QueueFull, Row, Update
from .server import Server

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Admitted:
    """A request's rows in the queue: `n` rows per prompt, in prompt order."""

    rows: list[Row]
    sink: asyncio.Queue[Update]
    prompt_tokens: int
    admitted_at: float = field(default_factory=time.perf_counter)

    @property
    def completion_tokens(self) -> int:
        """Tokens generated so far over all rows."""
        return sum(row.completion_tokens for row in self.rows)

    def usage(self) -> Usage:
        """The request's token counts."""
        done = self.completion_tokens
        return Usage(prompt_tokens=self.prompt_tokens, completion_tokens=done, total_tokens=self.prompt_tokens + done)


def sampling_params(backbone: Backbone, body: SamplingFields, max_tokens: int, index: int) -> SamplingParams:
    """Decode settings for choice `index`; unset fields follow the model's generation config, as vLLM does."""
    generation = backbone.model.generation_config
    temperature = body.temperature
    if temperature is None:
        temperature = float(generation.temperature or 1.0) if generation.do_sample else 0.0
    top_p = body.top_p if body.top_p is not None else float(generation.top_p or 1.0) if generation.do_sample else 1.0
    # Choices of one request must differ, yet stay repeatable under a seed.
    seed = None if body.seed is None else body.seed + index
    return SamplingParams(
        max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed, stop=body.stop_strings
    )


def admit(
    server: Server,
    *,
    target: Target,
    backbone: Backbone,
    prompts: list[list[int]],
    body: SamplingFields,
    max_tokens: int | None,
    prompt_field: str,
) -> Admitted:
    """Check lengths and queue `body.n` rows per prompt.

    Raises:
        APIError: 400 naming the field that is too long; 429 when the queue is full.
    """
    config = server.config
    max_tokens = max_tokens or min(config.default_max_tokens, config.max_output_tokens)
    if max_tokens > config.max_output_tokens:
        raise bad_request(
            f"at most {config.max_output_tokens} tokens may be generated, asked {max_tokens}", "max_tokens"
        )
    if len(prompts) * body.n > config.max_queue:  # could never be admitted: say so rather than 429 forever
        raise bad_request(
            f"{len(prompts)} prompt(s) x n={body.n} sequences exceed the server's queue of {config.max_queue}",
            "n" if body.n > 1 else prompt_field,
        )
    for prompt in prompts:
        if not prompt:
            raise bad_request("the prompt is empty", prompt_field)
        if len(prompt) > config.max_input_tokens:
            raise bad_request(f"{len(prompt)} tokens exceed the limit of {config.max_input_tokens}", prompt_field)
        if len(prompt) + max_tokens > backbone.max_positions:
            raise bad_request(
                f"{len(prompt)} prompt tokens + {max_tokens} to generate exceed the model's "
                f"{backbone.max_positions}-token context",
                "max_tokens",
            )
    sink: asyncio.Queue[Update] = asyncio.Queue()
    rows = [
        Row(prompt, sampling_params(backbone, body, max_tokens, index), target, backbone.group, sink)
        for prompt in prompts
        for index in range(body.n)
    ]
    try:
        server.backend.submit(rows)
    except QueueFull as exc:
        raise APIError(429, f"server busy: {exc}", type_="server_busy", code="queue_full") from exc
    prompt_tokens = sum(map(len, prompts))
    server.metrics.prompt_tokens.inc(prompt_tokens)
    return Admitted(rows, sink, prompt_tokens)


async def updates(server: Server, admitted: Admitted) -> AsyncIterator[tuple[int, Update]]:
    """Yield (row index, update) until every row has finished; cancel the rest if the consumer stops early."""
    index = {id(row): i for i, row in enumerate(admitted.rows)}
    open_rows = len(admitted.rows)
    first = True
    try:
        while open_rows:
            update = await admitted.sink.get()
            if first and update.text:
                server.metrics.ttft.observe(time.perf_counter() - admitted.admitted_at)
                first = False
            if update.finish_reason:
                open_rows -= 1
            yield index[id(update.row)], update
    finally:
        if open_rows:
            server.metrics.cancelled.inc()
            server.backend.cancel(admitted.rows)


async def collect(server: Server, admitted: Admitted) -> tuple[list[str], list[str]]:
    """Wait for every row; return their texts and finish reasons.

    Raises:
        APIError: 500 when generation failed.
    """
    texts = [""] * len(admitted.rows)
    reasons = [""] * len(admitted.rows)
    async for i, update in updates(server, admitted):
        if update.error:
            raise APIError(500, update.error, type_="server_error")
        texts[i] += update.text
        reasons[i] = update.finish_reason or reasons[i]
    return texts, reasons


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Run `work`, cancelling it (and so freeing its queue slots) if the client disconnects first."""
    task = asyncio.ensure_future(work)

    async def client_gone() -> None:
        # The body has been read already, so the next message can only be the disconnect.
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(client_gone())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        raise APIError(499, "client closed the request", type_="client_closed")
    return task.result()


def sse_error(message: str) -> str:
    """An event that makes OpenAI clients raise mid-stream (generation failed after the 200 was sent)."""
    return sse({"error": {"message": message, "type": "server_error", "param": None, "code": None}})


def sse(payload: BaseModel | dict[str, Any] | str) -> str:
    """One server-sent event carrying `payload` as JSON (or `[DONE]`)."""
    if isinstance(payload, BaseModel):
        payload = payload.model_dump_json(exclude_none=False)
    elif isinstance(payload, dict):
        payload = json.dumps(payload)
    return f"data: {payload}\n\n"


async def load_target(server: Server, caller: Caller, name: str) -> tuple[Target, Backbone]:
    """Resolve `name` for `caller` and make sure it is loaded.

    Raises:
        APIError: 404 for a model the caller may not address; 500 when it cannot be loaded.
    """
    target = await off_the_loop(server.config, resolve_model, caller, name)
    try:
        backbone = await server.backend.prepare(target)
    except Exception as exc:
        log.exception("could not load %s", name)
        raise APIError(500, f"model {name!r} could not be loaded: {exc}", param="model", type_="server_error") from exc
    return target, backbone


def tokenize(backbone: Backbone, text: str) -> list[int]:
    """Token ids of `text`, without special tokens (chat templates already carry their own)."""
    return backbone.tokenizer(text, add_special_tokens=False).input_ids


def completion_id(prefix: str) -> tuple[str, int]:
    """A fresh response id and its creation time."""
    return f"{prefix}-{uuid.uuid4().hex[:24]}", int(time.time())
