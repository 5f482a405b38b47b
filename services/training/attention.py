"""Causal attention for padding-free packed batches: one fused causal SDPA call per sample.

transformers handles packed rows by building a dense block-diagonal mask, which sends PyTorch's SDPA down
its generic masked path. Splitting the row at the samples' boundaries instead lets every sample use the
fused causal kernel (FlashAttention on CPU as on GPU) and skips building the mask. The result is the
same attention: no token sees another sample (`tests/training/test_packing.py`).
"""

from __future__ import annotations

PACKED_ATTENTION = "tuneflow_packed_causal"


def packed_causal_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):  # type: ignore[no-untyped-def]
    """Attention over one packed row; sample boundaries are where `position_ids` restart at 0.

    Shapes follow transformers' attention interface: query (1, heads, tokens, head_dim), key/value with
    the model's key/value heads; returns (1, tokens, heads, head_dim) and no attention weights.
    """
    import torch
    from transformers.integrations.sdpa_attention import repeat_kv

    position_ids = kwargs.get("position_ids")
    if attention_mask is not None or position_ids is None or query.shape[0] != 1:
        raise ValueError(f"{PACKED_ATTENTION} serves only padding-free batches (one row, position_ids, no mask)")
    key = repeat_kv(key, module.num_key_value_groups)
    value = repeat_kv(value, module.num_key_value_groups)
    starts = (position_ids[0] == 0).nonzero().flatten().tolist()
    bounds = [*starts, query.shape[2]] if starts and starts[0] == 0 else [0, *starts, query.shape[2]]
    p = dropout if module.training else 0.0
    parts = [
        torch.nn.functional.scaled_dot_product_attention(
            query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], dropout_p=p, is_causal=True, scale=scaling
        )
        for a, b in zip(bounds[:-1], bounds[1:], strict=False)
        if b > a
    ]
    return torch.cat(parts, dim=2).transpose(1, 2).contiguous(), None


def register() -> str:
    """Make the implementation known to transformers (idempotent); return its name for `attn_implementation`."""
    from transformers import AttentionInterface

    AttentionInterface.register(PACKED_ATTENTION, packed_causal_attention)
    return PACKED_ATTENTION
