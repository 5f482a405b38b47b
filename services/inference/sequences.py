"""The unit of work every backend runs: one sequence to generate, the updates it streams back, and refusal."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .model_cache import Target
from .sampling import SamplingParams


@dataclass(eq=False)
class Row:
    """One sequence: a prompt, how to decode it, and where its updates go."""

    prompt_ids: list[int]
    params: SamplingParams
    target: Target
    group: str  # rows of one group can share a batch
    sink: asyncio.Queue[Update] = field(default_factory=asyncio.Queue)
    cancelled: bool = False  # set by the request side when its client goes away
    completion_tokens: int = 0


@dataclass
class Update:
    """New text for a row; `finish_reason` is set on its last update (`stop`, `length` or `error`)."""

    row: Row
    text: str
    finish_reason: str | None = None
    error: str | None = None


class QueueFull(Exception):
    """The backend is saturated (or shutting down); the client should retry later."""
