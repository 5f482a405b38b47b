"""Full fine-tuning and freeze tuning (only some layers train), for `pt` and `sft` alike."""

from __future__ import annotations

import re

from shared.schemas.training import TrainJobConfig

from ._common import load_base


def load_for_training(config: TrainJobConfig, source: str):  # type: ignore[no-untyped-def]
    """Load the base in fp32 (mixed precision casts on the fly) and unfreeze what the method trains."""
    model = load_base(config, source)
    if config.finetuning_type == "freeze":
        freeze_all_but(model, trainable_layer_ids(config, model.config.num_hidden_layers), config)
    return model


def trainable_layer_ids(config: TrainJobConfig, num_layers: int) -> list[int]:
    """LLaMA-Factory's rule: a positive count trains the last layers, a negative one the first."""
    n = config.freeze_trainable_layers
    if abs(n) > num_layers:
        raise ValueError(f"freeze_trainable_layers={n} but the model has only {num_layers} layers")
    return list(range(num_layers - n, num_layers)) if n > 0 else list(range(-n))


def freeze_all_but(model, layer_ids: list[int], config: TrainJobConfig) -> None:  # type: ignore[no-untyped-def]
    """Set requires_grad only on the chosen layers' parameters (optionally only some modules in them)."""
    modules = [m.strip() for m in config.freeze_trainable_modules.split(",") if m.strip()]
    layer = re.compile(r"\.layers\.(\d+)\.(.+)$")
    matched = 0
    for name, param in model.named_parameters():
        found = layer.search(name)
        keep = bool(found) and int(found.group(1)) in layer_ids
        if keep and modules != ["all"]:
            keep = any(found.group(2).startswith(m + ".") or f".{m}." in f".{found.group(2)}" for m in modules)
        param.requires_grad_(keep)
        matched += keep
    if not matched:
        raise ValueError(f"freeze_trainable_modules={config.freeze_trainable_modules!r} matched no parameter")
