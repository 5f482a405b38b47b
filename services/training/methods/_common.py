"""Loading the base model: the one place every method family starts from."""

from __future__ import annotations

from shared.schemas.training import TrainJobConfig


def load_base(config: TrainJobConfig, source: str, **kwargs):  # type: ignore[no-untyped-def]
    """Load `source` for training, in the dtype `base_dtype` picks."""
    from transformers import AutoModelForCausalLM

    if config.packing:  # padding-free rows: split attention at sample boundaries instead of masking
        from ..attention import register

        kwargs["attn_implementation"] = register()
    model = AutoModelForCausalLM.from_pretrained(source, dtype=base_dtype(config), **kwargs)
    model.config.use_cache = False  # the KV cache is useless in training and clashes with checkpointing
    return model


def base_dtype(config: TrainJobConfig):  # type: ignore[no-untyped-def]
    """bf16 for a frozen base under bf16 (half the memory; PEFT keeps adapters fp32), else fp32.

    Weights that train stay fp32 master weights: the Trainer autocasts the forward pass for mixed precision,
    and optimizer updates smaller than bf16's resolution are not lost.
    """
    import torch

    frozen_base = config.finetuning_type not in ("full", "freeze")
    return torch.bfloat16 if config.bf16 and frozen_base else torch.float32
