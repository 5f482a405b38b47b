"""Token-weighted perplexity over responses (chat template, response tokens only) or raw text.

Texts longer than the window are scored with a sliding window (transformers' "perplexity of
fixed-length models" recipe): every token is scored exactly once, with up to `window - stride`
tokens of earlier context carried into each new window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..dataset import EvalSample
from ..prompts import encode_exchange, render_exchange
from ._loglik import IGNORE, ScoredSpan, sum_logprobs


@dataclass
class TokenSequence:
    """Ids of one text and which positions count towards perplexity."""

    input_ids: list[int]
    scored: list[bool]


@dataclass
class PerplexityResult:
    """Corpus perplexity (exp of the mean NLL over all scored tokens) and per-sample parts."""

    perplexity: float
    mean_nll: float
    tokens: int
    per_sample: list[float | None]  # per-sample perplexity; None where nothing was scored


def response_sequences(tokenizer: Any, samples: Sequence[EvalSample], template: str | None) -> list[TokenSequence]:
    """One sequence per conversation; only the reference reply's tokens are scored."""
    sequences = []
    for sample in samples:
        texts = render_exchange(tokenizer, sample.messages, sample.response, template, sample.tools)
        prompt_ids, response_ids = encode_exchange(tokenizer, *texts)
        sequences.append(
            TokenSequence(prompt_ids + response_ids, [False] * len(prompt_ids) + [True] * len(response_ids))
        )
    return sequences


def text_sequences(tokenizer: Any, texts: Sequence[str]) -> list[TokenSequence]:
    """One sequence per raw text, every token scored (the first has no context and never is)."""
    sequences = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        sequences.append(TokenSequence(ids, [True] * len(ids)))
    return sequences


def sliding_windows(sequence: TokenSequence, *, window: int, stride: int) -> list[ScoredSpan]:
    """Split a sequence into windows of at most `window` tokens, each scoring only tokens not scored before."""
    ids, n = sequence.input_ids, len(sequence.input_ids)
    spans = []
    scored_until = 1  # position 0 has no prefix to be predicted from
    begin = 0
    while True:
        end = min(begin + window, n)
        labels = [
            ids[p] if sequence.scored[p] and p >= max(scored_until, begin + 1) else IGNORE for p in range(begin, end)
        ]
        spans.append(ScoredSpan(ids[begin:end], labels))
        scored_until = end
        if end >= n:
            return spans
        begin += stride


def perplexity(
    model: Any, sequences: Sequence[TokenSequence], *, window: int, stride: int, batch_size: int, pad_id: int
) -> PerplexityResult:
    """Perplexity of `sequences` under `model`, windows of all sequences batched together."""
    if stride >= window:
        raise ValueError(f"stride ({stride}) must be smaller than the window ({window}) or tokens go unscored")
    spans: list[ScoredSpan] = []
    owners: list[int] = []
    for index, sequence in enumerate(sequences):
        pieces = sliding_windows(sequence, window=window, stride=stride)
        spans.extend(pieces)
        owners.extend([index] * len(pieces))
    nll = [0.0] * len(sequences)
    counts = [0] * len(sequences)
    for owner, (logprob, count) in zip(
        owners, sum_logprobs(model, spans, batch_size=batch_size, pad_id=pad_id), strict=True
    ):
        nll[owner] -= logprob
        counts[owner] += count
    total = sum(counts)
    mean_nll = sum(nll) / total if total else float("nan")
    per_sample = [math.exp(n / c) if c else None for n, c in zip(nll, counts, strict=True)]
    return PerplexityResult(math.exp(mean_nll) if total else float("nan"), mean_nll, total, per_sample)
