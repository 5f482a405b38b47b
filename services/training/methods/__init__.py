"""One module per method family; `load_for_training` picks the family the config names.

A family module exposes `load_for_training(config, source) -> model`: it loads the base model the way the
method needs (quantized for QLoRA, for instance) and marks which parameters train.
"""

from __future__ import annotations

from types import ModuleType

from shared.schemas.training import TrainJobConfig

from . import full, lora, prefix

FAMILIES: dict[str, ModuleType] = {
    "full": full,
    "freeze": full,
    "lora": lora,
    "ptuning_v2": prefix,
    "prompt": prefix,
}


def load_for_training(config: TrainJobConfig, source: str):  # type: ignore[no-untyped-def]
    """Load `source` (a local folder) and make it trainable with `config.finetuning_type`."""
    return FAMILIES[config.finetuning_type].load_for_training(config, source)


def count_parameters(model) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(trainable, total) parameter counts; 4-bit weights count twice, as bitsandbytes packs two per byte."""
    trainable = total = 0
    for param in model.parameters():
        n = param.numel() * (2 if type(param).__name__ == "Params4bit" else 1)
        total += n
        trainable += n if param.requires_grad else 0
    return trainable, total
