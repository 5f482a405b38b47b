"""Loading the base model: the one place every method family starts from."""

from __future__ import annotations

from shared.schemas.training import TrainJobConfig


def load_base(config: TrainJobConfig, source: str, **kwargs):  # type: ignore[no-untyped-def]
    """Load `source` in fp32; mixed precision, when asked for, is autocast during training."""
    import torch
    from transformers import AutoModelForCausalLM

    # fp32 master weights: Trainer's bf16/fp16 flags autocast the forward pass, and optimizer states stay exact.
    model = AutoModelForCausalLM.from_pretrained(source, dtype=kwargs.pop("dtype", torch.float32), **kwargs)
    model.config.use_cache = False  # the KV cache is useless in training and clashes with checkpointing
    return model
