"""Batched sums of token log-likelihoods: the one forward-pass loop perplexity and multiple choice share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

IGNORE = -100  # label of a token that is context only, as in transformers' loss
MIN_FILL = 0.75  # every row of a batch is at least this share of the batch width: padding stays under 25%


@dataclass
class ScoredSpan:
    """Token ids and, per position, the id to score there or IGNORE."""

    input_ids: list[int]
    labels: list[int]


def sum_logprobs(model: Any, spans: Sequence[ScoredSpan], *, batch_size: int, pad_id: int) -> list[tuple[float, int]]:
    """(sum of log p(label | prefix), number of scored labels) for each span, in input order.

    Spans are batched longest first with right padding and no attention mask: under causal attention a
    real token never sees the padding after it, and its position ids are those of the unpadded span, so
    results match one-at-a-time scoring while attention keeps its fast causal path (an explicit padding
    mask makes it several times slower on CPU). Outputs at padding positions are never read.
    """
    import torch

    results: list[tuple[float, int]] = [(0.0, 0)] * len(spans)
    device = next(model.parameters()).device
    for indices in length_batches([len(s.input_ids) for s in spans], batch_size):
        batch = [spans[i] for i in indices]
        width = len(batch[0].input_ids)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
        for row, span in enumerate(batch):
            n = len(span.input_ids)
            ids[row, :n] = torch.tensor(span.input_ids)
            labels[row, :n] = torch.tensor(span.labels)
        targets = labels[:, 1:]  # position t predicts token t + 1
        keep = torch.zeros((len(batch), width), dtype=torch.bool)
        keep[:, :-1] = targets != IGNORE
        with torch.inference_mode():
            # A boolean logits_to_keep projects only the scored positions onto the vocabulary: prompt and
            # padding positions never reach the (large) output layer or the softmax.
            logits = model(input_ids=ids.to(device), logits_to_keep=keep.to(device)).logits
            nll = torch.nn.functional.cross_entropy(logits.float(), targets[keep[:, :-1]].to(device), reduction="none")
        rows = keep.nonzero()[:, 0].to(device)
        sums = torch.zeros(len(batch), device=device).index_add_(0, rows, -nll).tolist()
        counts = keep.sum(dim=1).tolist()
        for offset, index in enumerate(indices):
            results[index] = (sums[offset], counts[offset])
    return results


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped longest first into batches of at most `batch_size`, each row >= MIN_FILL of the first.

    Padded positions cost as much compute as real ones (attention grows with the square of the width),
    so a much shorter sequence starts a new batch rather than being padded to the longest.
    """
    batches: list[list[int]] = []
    for index in sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True):
        current = batches[-1] if batches else None
        if current is None or len(current) >= batch_size or lengths[index] < MIN_FILL * lengths[current[0]]:
            batches.append([index])
        else:
            current.append(index)
    return batches
