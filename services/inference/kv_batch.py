"""Growing and shrinking a running batch: its left-padded inputs and its KV cache.

Continuous batching needs two operations `generate` never does: append rows that were prefilled on
their own, and drop rows that finished. Both work on the full-attention `DynamicLayer`s of a
`DynamicCache`; models with other cache layers (sliding windows, linear attention) cannot join
batches and run one batch at a time instead.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def left_pad(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack prompts of different lengths, padded on the left so every row's next token is at the end."""
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        mask[i, width - len(prompt) :] = 1
    return ids, mask


def can_join(cache: Any) -> bool:
    """Whether every layer of `cache` is a plain full-attention layer whose tensors can be concatenated."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer and layer.is_initialized for layer in layers)


def join(cache: Any, mask: torch.Tensor, other_cache: Any, other_mask: torch.Tensor) -> torch.Tensor:
    """Append `other_cache`'s rows to `cache` in place; return the joined attention mask.

    The shorter side is padded on the left with masked positions, so every row keeps its tokens at
    the end, where the next step appends.
    """
    width = max(mask.shape[1], other_mask.shape[1])
    for layer, other in zip(cache.layers, other_cache.layers, strict=True):
        layer.keys = torch.cat([_pad_seq(layer.keys, width), _pad_seq(other.keys, width)], dim=0)
        layer.values = torch.cat([_pad_seq(layer.values, width), _pad_seq(other.values, width)], dim=0)
    return torch.cat([_pad_mask(mask, width), _pad_mask(other_mask, width)], dim=0)


def keep_rows(cache: Any, mask: torch.Tensor, keep: list[int]) -> torch.Tensor:
    """Drop every row of `cache` not in `keep` (in place); return the mask cut the same way.

    Columns every remaining row masks out are trimmed too, so a long prompt that has left does not
    keep costing attention.
    """
    index = torch.tensor(keep, device=mask.device)
    mask = mask.index_select(0, index)
    cache.batch_select_indices(index)
    unused = int((mask.sum(dim=0) == 0).long().cumprod(dim=0).sum())  # leading all-padding columns
    if unused:
        mask = mask[:, unused:]
        for layer in cache.layers:
            layer.keys = layer.keys[:, :, unused:, :]
            layer.values = layer.values[:, :, unused:, :]
    return mask


def _pad_seq(states: torch.Tensor, width: int) -> torch.Tensor:
    return F.pad(states, (0, 0, width - states.shape[-2], 0))


def _pad_mask(mask: torch.Tensor, width: int) -> torch.Tensor:
    return F.pad(mask, (width - mask.shape[1], 0))
