"""The transformers engine: decodes a batch of rows token by token with a KV cache, on any device."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch

from .config import ServeConfig
from .metrics import Metrics
from .model_cache import BASE_GROUP, Backbone, ModelCache, Target, load_backbone
from .sampling import make_generator, next_tokens
from .sequences import Row, Update
from .text import TextStream

log = logging.getLogger(__name__)
Emit = Callable[[list[Update]], None]


class TransformersEngine:
    """One base model and its cached adapters, decoded with plain PyTorch forwards.

    A hand-written decode loop rather than `model.generate`: every row keeps its own sampling
    parameters, seed, stop strings and length, can be dropped when its client leaves, and reports each
    token as it is made, which `generate` offers for one sequence at a time only.
    """

    def __init__(self, config: ServeConfig, metrics: Metrics) -> None:
        self.metrics = metrics
        self.stream_interval_s = config.stream_interval_ms / 1000
        self.cache = ModelCache(load_backbone(config.model, group=BASE_GROUP), capacity=config.adapter_cache)

    def prepare(self, target: Target) -> Backbone:
        """Load `target` (downloading it if needed) before its rows are queued; return its backbone."""
        return self.cache.acquire(target)[0]

    @torch.inference_mode()
    def run_batch(self, rows: list[Row], emit: Emit) -> None:
        """Generate every row of one group to its end, calling `emit` with each step's updates."""
        pinned = frozenset(row.target.name for row in rows)
        acquired = [self.cache.acquire(row.target, pinned) for row in rows]
        backbone = acquired[0][0]
        model = self.cache.base_module if backbone.group == BASE_GROUP else backbone.model
        extra = {}
        if backbone.group == BASE_GROUP and self.cache.has_adapters:
            extra["adapter_names"] = [adapter or "__base__" for _, adapter in acquired]
        device = next(model.parameters()).device

        input_ids, attention_mask = _left_pad([row.prompt_ids for row in rows], backbone.tokenizer.pad_token_id)
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        # Left padding shifts each row's positions; count them from its first real token.
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        params = [row.params for row in rows]
        generators = [make_generator(p.seed) for p in params]
        streams = [TextStream(backbone.tokenizer, p.stop) for p in params]
        live = [not row.cancelled for row in rows]
        past = None
        outbox = _Outbox(emit, self.stream_interval_s)
        started = time.perf_counter()
        for step in range(max(p.max_tokens for p in params)):
            out = model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                past_key_values=past,
                use_cache=True,
                logits_to_keep=1,
                **extra,
            )
            past = out.past_key_values
            tokens = next_tokens(out.logits[:, -1, :].float(), params, generators)
            for i, row in enumerate(rows):
                if not live[i]:
                    continue
                if row.cancelled:
                    live[i] = False
                    continue
                update = _advance(row, tokens[i], streams[i], backbone.eos_ids, step)
                if update.finish_reason:
                    live[i] = False
                outbox.add(update)
            outbox.flush(final=not any(live))
            if not any(live):
                break
            input_ids = torch.tensor(tokens, device=device)[:, None]
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(rows), 1))], dim=1)
            position_ids = position_ids[:, -1:] + 1
        outbox.flush(final=True)
        tokens_made = sum(row.completion_tokens for row in rows)
        self.metrics.record_batch(size=len(rows), tokens=tokens_made, seconds=time.perf_counter() - started)


class _Outbox:
    """Holds a batch's updates back so the event loop wakes every `interval` seconds, not every token.

    Each hand-over costs the decode thread the GIL; once per token, a small model spends more time
    handing tokens over than making them. A row's first text and its end go out at once, so time to
    first token and latency are unaffected.
    """

    def __init__(self, emit: Emit, interval: float) -> None:
        self._emit = emit
        self._interval = interval
        self._held: dict[Row, Update] = {}
        self._started: set[Row] = set()
        self._urgent = False
        self._last = time.perf_counter()

    def add(self, update: Update) -> None:
        """Hold `update`, merged with the row's held text."""
        if not (update.text or update.finish_reason):
            return
        held = self._held.get(update.row)
        if held is None:
            self._held[update.row] = update
        else:
            held.text += update.text
            held.finish_reason = update.finish_reason
        if update.finish_reason or (update.text and update.row not in self._started):
            self._urgent = True
            self._started.add(update.row)

    def flush(self, final: bool = False) -> None:
        """Send what is held if something is urgent, the interval has passed, or the batch is over."""
        now = time.perf_counter()
        if self._held and (final or self._urgent or now - self._last >= self._interval):
            self._emit(list(self._held.values()))
            self._held, self._urgent, self._last = {}, False, now


def _advance(row: Row, token: int, stream: TextStream, eos_ids: frozenset[int], step: int) -> Update:
    """Feed one sampled token to a row and say what the client should see."""
    if token in eos_ids:
        return Update(row, stream.finish(), "stop")
    row.completion_tokens += 1
    text = stream.add(token)
    if stream.stopped:
        return Update(row, text, "stop")
    if step + 1 >= row.params.max_tokens:
        return Update(row, text + stream.finish(), "length")
    return Update(row, text)


def _left_pad(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack prompts of different lengths, padded on the left so every row's next token is at the end."""
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        mask[i, width - len(prompt) :] = 1
    return ids, mask
