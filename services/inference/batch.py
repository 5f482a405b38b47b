"""Batch generation for other services (`inference.generate`): a requests JSONL in the store in, responses out.

It runs the server's own decode loop (continuous batching, per-row seeded sampling) and renders chats
with the server's own prompt builder, without HTTP, so a response equals what the server answers for
the same prompt and sampling settings.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from shared.modelkit import check_model_access, resolve_model_source
from shared.modelkit.loader import FINE_TUNED_PREFIX
from shared.schemas.generation import GenerateConfig, GenerationRequest, GenerationResponse
from shared.storage import ObjectKind, ObjectStore, get_bytes, is_owned_key, object_key, put_bytes, user_prefix

from .access import fine_tuned_source
from .config import ServeConfig
from .engine import TransformersEngine
from .errors import APIError
from .generation import tokenize
from .metrics import Metrics
from .model_cache import Backbone, Target
from .openai_chat import chat_prompt
from .sampling import SamplingParams
from .schemas import ChatCompletionRequest
from .sequences import Row, Update

PROGRESS_INTERVAL_S = 5.0  # how often progress is reported (and cancellation checked) while decoding
Progress = Callable[[int, int], bool]  # (done, total) -> whether to go on


class GenerationCancelled(RuntimeError):
    """The progress callback asked to stop; nothing was written."""


def resolve_owned_model(name: str, user_id: str, field: str) -> str:
    """The loadable source of a client-supplied model name, refusing any model `user_id` does not own.

    `ft:` names resolve through the user's own succeeded jobs; `store://` prefixes must lie under the
    user's prefix; local folders and hub ids pass as they are.

    Raises:
        PermissionError: naming `field`.
    """
    if name.startswith(FINE_TUNED_PREFIX):
        source = fine_tuned_source(user_id, name)
        if source is None:
            raise PermissionError(f"{field}: {name!r} is not a succeeded fine-tuned model of user {user_id!r}")
        name = source
    check_model_access(name, user_id, field)
    return name


def read_requests(raw: bytes, key: str) -> list[GenerationRequest]:
    """Parse a requests JSONL (blank lines skipped).

    Raises:
        ValueError: naming the key and line of a malformed request or a repeated id.
    """
    requests: list[GenerationRequest] = []
    seen: set[str] = set()
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            request = GenerationRequest.model_validate_json(line)
        except ValidationError as exc:
            raise ValueError(f"{key} line {number}: {exc}") from exc
        if request.id in seen:
            raise ValueError(f"{key} line {number}: id {request.id!r} was used before")
        seen.add(request.id)
        requests.append(request)
    return requests


def generate_responses(
    config: GenerateConfig,
    requests: list[GenerationRequest],
    *,
    model_source: str,
    adapter_source: str | None = None,
    progress: Progress | None = None,
) -> list[GenerationResponse]:
    """Generate one response per request, in request order.

    A request that cannot be generated (a prompt the template rejects, or too long for the model) gets a
    response with `finish_reason` `error` instead of failing the batch.

    Args:
        config: Sampling settings and batch size (its model fields are not read here).
        requests: What to generate.
        model_source: The base (or merged) model, as `resolve_owned_model` returned it.
        adapter_source: A LoRA adapter (or another whole model) to generate with instead of the plain base.
        progress: Called at most every PROGRESS_INTERVAL_S with (done, total); returning False stops.

    Raises:
        ValueError: `model` is a LoRA adapter, or has no chat template while requests hold `messages`.
        GenerationCancelled: `progress` returned False.
    """
    if not requests:
        return []  # nothing to ask: no reason to load a model
    if (Path(resolve_model_source(model_source)) / "adapter_config.json").is_file():
        raise ValueError(f"model: {model_source!r} is a LoRA adapter; give its base as `model` and it as `adapter`")
    engine = TransformersEngine(
        ServeConfig(model=model_source, max_batch_size=config.batch_size, adapter_cache=1), Metrics()
    )
    target = Target("adapter", adapter_source) if adapter_source else Target("base")
    backbone = engine.prepare(target)
    if any(r.messages for r in requests) and not getattr(backbone.tokenizer, "chat_template", None):
        raise ValueError(f"model: {model_source!r} has no chat template; send `prompt` instead of `messages`")
    responses: list[GenerationResponse | None] = [None] * len(requests)
    rows: dict[int, Row] = {}
    for index, request in enumerate(requests):
        try:
            prompt = _prompt_ids(backbone, request, config.max_new_tokens)
        except ValueError as exc:
            responses[index] = GenerationResponse(id=request.id, text="", finish_reason="error", error=str(exc))
            continue
        params = SamplingParams(config.max_new_tokens, config.temperature, config.top_p, seed=config.seed + index)
        rows[index] = Row(prompt, params, target, backbone.group)
    texts = _decode(engine, list(rows.values()), len(requests) - len(rows), len(requests), progress)
    for index, row in rows.items():
        text, reason = texts[id(row)]
        responses[index] = GenerationResponse(id=requests[index].id, text=text, finish_reason=reason)
    return [r for r in responses if r is not None]


def _prompt_ids(backbone: Backbone, request: GenerationRequest, max_new_tokens: int) -> list[int]:
    """The request's prompt tokens, exactly as the server's chat or completion endpoint would build them."""
    if request.messages is not None:
        body = ChatCompletionRequest(model="batch", messages=[m.model_dump() for m in request.messages])
        try:
            prompt = chat_prompt(backbone, body)
        except APIError as exc:
            raise ValueError(exc.message) from exc
    else:
        prompt = tokenize(backbone, request.prompt or "")
    if not prompt:
        raise ValueError("the prompt is empty")
    if len(prompt) + max_new_tokens > backbone.max_positions:
        raise ValueError(
            f"{len(prompt)} prompt tokens + max_new_tokens {max_new_tokens} exceed the model's "
            f"{backbone.max_positions}-token context"
        )
    return prompt


def _decode(
    engine: TransformersEngine, rows: list[Row], done: int, total: int, progress: Progress | None
) -> dict[int, tuple[str, str]]:
    """Run every row through the engine; return (text, finish reason) by `id(row)`."""
    results: dict[int, tuple[str, str]] = {}
    if not rows:
        return results
    waiting = deque(rows)
    finished = done
    last_report = time.monotonic()
    stopped = False

    def take(room: int, group: str, in_use: frozenset[str]) -> list[Row]:
        return [waiting.popleft() for _ in range(min(room, len(waiting)))]

    def emit(updates: list[Update]) -> None:
        nonlocal finished
        for update in updates:
            text, _ = results.get(id(update.row), ("", ""))
            results[id(update.row)] = (text + update.text, update.finish_reason or "")
            finished += update.finish_reason is not None

    def chores() -> None:
        nonlocal last_report, stopped
        if progress is None or stopped or time.monotonic() - last_report < PROGRESS_INTERVAL_S:
            return
        last_report = time.monotonic()
        if not progress(finished, total):
            stopped = True
            waiting.clear()
            for row in rows:
                row.cancelled = True

    engine.run(take(engine.max_batch_size, "", frozenset()), take, chores, emit)
    if stopped:
        raise GenerationCancelled(f"stopped after {finished} of {total} responses")
    return results


def run_generate_job(
    config: GenerateConfig, *, store: ObjectStore, user_id: str, job_id: str, progress: Progress | None = None
) -> tuple[str, list[GenerationResponse]]:
    """Check ownership, read the requests, generate, and write the responses JSONL under the job's prefix.

    Returns:
        The responses' object key, and the responses.

    Raises:
        PermissionError: the model, adapter or requests key is not the user's; the message names the field.
    """
    model = resolve_owned_model(config.model, user_id, "model")
    adapter = resolve_owned_model(config.adapter, user_id, "adapter") if config.adapter else None
    if not is_owned_key(config.requests_key, user_id):
        raise PermissionError(f"requests_key: {config.requests_key!r} is not under {user_prefix(user_id)!r}")
    key = object_key(user_id, ObjectKind.JOBS, job_id, config.responses_name)
    requests = read_requests(get_bytes(store, config.requests_key), config.requests_key)
    responses = generate_responses(config, requests, model_source=model, adapter_source=adapter, progress=progress)
    body = "".join(json.dumps(r.model_dump(mode="json"), ensure_ascii=False) + "\n" for r in responses)
    put_bytes(store, key, body.encode(), "application/jsonl")
    return key, responses
