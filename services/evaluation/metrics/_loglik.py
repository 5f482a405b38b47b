"""Batched sums of token log-likelihoods: the one forward-pass loop perplexity and multiple choice share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

IGNORE = -100  # label of a token that is context only, as in transformers' loss


@dataclass
class ScoredSpan:
    """Token ids and, per position, the id to score there or IGNORE."""

    input_ids: list[int]
    labels: list[int]


def sum_logprobs(model: Any, spans: Sequence[ScoredSpan], *, batch_size: int, pad_id: int) -> list[tuple[float, int]]:
    """(sum of log p(label | prefix), number of scored labels) for each span, in input order.

    Spans are batched longest first with right padding: with right padding the position ids of real
    tokens are the same as unpadded, so results match one-at-a-time scoring.
    """
    import torch

    order = sorted(range(len(spans)), key=lambda i: len(spans[i].input_ids), reverse=True)
    results: list[tuple[float, int]] = [(0.0, 0)] * len(spans)
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        batch = [spans[i] for i in order[start : start + batch_size]]
        width = max(len(s.input_ids) for s in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, span in enumerate(batch):
            n = len(span.input_ids)
            ids[row, :n] = torch.tensor(span.input_ids)
            labels[row, :n] = torch.tensor(span.labels)
            mask[row, :n] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        targets = labels[:, 1:].to(device)  # position t predicts token t + 1
        scored = targets != IGNORE
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
        picked = logprobs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        sums = (picked * scored).sum(dim=1).tolist()
        counts = scored.sum(dim=1).tolist()
        for offset, index in enumerate(order[start : start + batch_size]):
            results[index] = (sums[offset], counts[offset])
    return results
