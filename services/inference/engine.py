"""The transformers engine: continuous batching, token by token with a KV cache, on any device."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .config import ServeConfig
from .kv_batch import can_join, join, keep_rows, left_pad
from .metrics import Metrics
from .model_cache import BASE_GROUP, Backbone, ModelCache, Target, load_backbone
from .sampling import make_generator, next_tokens
from .sequences import Row, Update
from .text import TextStream

log = logging.getLogger(__name__)
Emit = Callable[[list[Update]], None]
Take = Callable[[int, str, frozenset[str]], list[Row]]


class TransformersEngine:
    """One base model and its cached adapters, decoded with plain PyTorch forwards.

    A hand-written decode loop rather than `model.generate`: every row keeps its own sampling
    parameters, seed, stop strings and length, rows join a running batch between steps and leave it
    when they finish or their client goes away, and text streams out as it is made.
    """

    def __init__(self, config: ServeConfig, metrics: Metrics) -> None:
        self.metrics = metrics
        self.max_batch_size = config.max_batch_size
        self.stream_interval_s = config.stream_interval_ms / 1000
        self.cache = ModelCache(load_backbone(config.model, group=BASE_GROUP), capacity=config.adapter_cache)
        self._in_use: frozenset[str] = frozenset()  # adapters and models the running batch decodes with

    def prepare(self, target: Target) -> Backbone:
        """Load `target` (downloading it if needed) before its rows are queued; return its backbone.

        Runs between steps, so what the running batch uses must stay loaded.
        """
        return self.cache.acquire(target, pinned=self._in_use)[0]

    @torch.inference_mode()
    def run(self, first: list[Row], take: Take, chores: Callable[[], None], emit: Emit) -> None:
        """Decode `first`, and the rows `take` hands over between steps, until no row is left.

        Args:
            first: Rows of one group to start with.
            take: Called between steps with (room, group, adapters in use); returns rows to join.
            chores: Called between steps to do queued model work (adapter loads).
            emit: Receives each batch of text updates (called on this thread).
        """
        group = first[0].group
        outbox = _Outbox(emit, self.stream_interval_s)
        running: _Running | None = None
        joining, started, made = first, time.perf_counter(), 0
        while joining or running:
            self._in_use = _targets(running) | {row.target.name for row in joining if row.target.source}
            chores()
            if joining:
                fresh = self._prefill(joining, outbox, in_use=_targets(running))
                running = fresh if running is None else running.join(fresh)
                joining = []
            assert running is not None
            left = running.drop_finished()
            made += left
            self.metrics.generated_tokens.inc(left)
            outbox.flush(final=running.empty)
            room = self.max_batch_size - len(running.seqs)
            if running.empty or (room > 0 and running.joinable):
                joining = take(room if not running.empty else self.max_batch_size, group, _targets(running))
            if running.empty:
                running = None
                continue
            self._step(running, outbox)
        self._in_use = frozenset()
        self.metrics.running.set(0)
        self.metrics.record_throughput(tokens=made, seconds=time.perf_counter() - started)

    def _module(self, backbone: Backbone, seqs: list[_Seq]) -> tuple[Any, dict[str, Any]]:
        """The network for these rows, and the `adapter_names` argument peft needs for a mixed batch."""
        if backbone.group != BASE_GROUP:
            return backbone.model, {}
        if not self.cache.has_adapters:
            return self.cache.base_module, {}
        return self.cache.base_module, {"adapter_names": [seq.adapter or "__base__" for seq in seqs]}

    def _prefill(self, rows: list[Row], outbox: _Outbox, in_use: frozenset[str]) -> _Running:
        pinned = in_use | {row.target.name for row in rows}
        acquired = [self.cache.acquire(row.target, pinned) for row in rows]
        backbone = acquired[0][0]
        device = next(backbone.model.parameters()).device
        seqs = [
            _Seq(row, adapter, TextStream(backbone.tokenizer, row.params.stop), make_generator(row.params.seed, device))
            for row, (_, adapter) in zip(rows, acquired, strict=True)
        ]
        model, extra = self._module(backbone, seqs)
        input_ids, mask = left_pad([row.prompt_ids for row in rows], backbone.tokenizer.pad_token_id)
        input_ids, mask = input_ids.to(device), mask.to(device)
        # Left padding shifts each row's positions; count them from its first real token.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = model(
            input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1, **extra
        )
        running = _Running(backbone, seqs, out.past_key_values, mask, positions[:, -1:], [])
        running.tokens = _sample_and_advance(running, out.logits, outbox)
        return running

    def _step(self, running: _Running, outbox: _Outbox) -> None:
        model, extra = self._module(running.backbone, running.seqs)
        self.metrics.running.set(len(running.seqs))
        self.metrics.batch_size.observe(len(running.seqs))
        device = running.mask.device
        running.mask = torch.cat([running.mask, running.mask.new_ones((len(running.seqs), 1))], dim=1)
        running.positions = running.positions + 1
        out = model(
            input_ids=torch.tensor(running.tokens, device=device)[:, None],
            attention_mask=running.mask,
            position_ids=running.positions,
            past_key_values=running.cache,
            use_cache=True,
            logits_to_keep=1,
            **extra,
        )
        running.cache = out.past_key_values
        running.tokens = _sample_and_advance(running, out.logits, outbox)


@dataclass(eq=False)
class _Seq:
    """A row being decoded."""

    row: Row
    adapter: str | None
    stream: TextStream
    generator: torch.Generator
    steps: int = 0
    done: bool = False


@dataclass(eq=False)
class _Running:
    """The batch being decoded: its rows, KV cache, mask, next positions and last sampled tokens."""

    backbone: Backbone
    seqs: list[_Seq]
    cache: Any
    mask: torch.Tensor
    positions: torch.Tensor
    tokens: list[int]

    @property
    def empty(self) -> bool:
        """Whether every row has left."""
        return not self.seqs

    @property
    def joinable(self) -> bool:
        """Whether rows can join and leave (full-attention caches only)."""
        return can_join(self.cache)

    def join(self, fresh: _Running) -> _Running:
        """Append `fresh`'s rows (prefilled on their own) to this batch."""
        self.mask = join(self.cache, self.mask, fresh.cache, fresh.mask)
        self.positions = torch.cat([self.positions, fresh.positions])
        self.seqs += fresh.seqs
        self.tokens += fresh.tokens
        return self

    def drop_finished(self) -> int:
        """Remove finished and cancelled rows so their seats free up; return the tokens they made."""
        keep = [i for i, seq in enumerate(self.seqs) if not (seq.done or seq.row.cancelled)]
        if len(keep) == len(self.seqs):
            return 0
        made = sum(seq.row.completion_tokens for i, seq in enumerate(self.seqs) if i not in keep)
        if not keep:
            self.seqs = []
        elif self.joinable:
            self.mask = keep_rows(self.cache, self.mask, keep)
            self.positions = self.positions[keep]
            self.seqs = [self.seqs[i] for i in keep]
            self.tokens = [self.tokens[i] for i in keep]
        else:  # cannot shrink this cache: finished rows ride along, ignored, until the batch ends
            return 0
        return made


def _targets(running: _Running | None) -> frozenset[str]:
    """Adapters and exported models a running batch uses (never evicted under it)."""
    if running is None:
        return frozenset()
    return frozenset(seq.row.target.name for seq in running.seqs if seq.row.target.source is not None)


def _sample_and_advance(running: _Running, logits: torch.Tensor, outbox: _Outbox) -> list[int]:
    """Pick every row's next token and report what each row's client should see."""
    seqs = running.seqs
    tokens = next_tokens(logits[:, -1, :].float(), [s.row.params for s in seqs], [s.generator for s in seqs])
    for seq, token in zip(seqs, tokens, strict=True):
        if seq.done or seq.row.cancelled:
            continue
        update = _advance(seq, token, running.backbone.eos_ids)
        seq.done = update.finish_reason is not None
        outbox.add(update)
    return tokens


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


def _advance(seq: _Seq, token: int, eos_ids: frozenset[int]) -> Update:
    """Feed one sampled token to a row and say what the client should see."""
    row, stream = seq.row, seq.stream
    seq.steps += 1
    if token in eos_ids:
        return Update(row, stream.finish(), "stop")
    row.completion_tokens += 1
    text = stream.add(token)
    if stream.stopped:
        return Update(row, text, "stop")
    if seq.steps >= row.params.max_tokens:
        return Update(row, text + stream.finish(), "length")
    return Update(row, text)
