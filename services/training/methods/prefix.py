"""P-Tuning v2 (deep prefix tuning: learned key/value prefixes in every layer) and plain prompt tuning."""

from __future__ import annotations

from shared.schemas.training import TrainJobConfig

from ._common import load_base


def load_for_training(config: TrainJobConfig, source: str):  # type: ignore[no-untyped-def]
    """Load the base frozen and add `num_virtual_tokens` learned prefix positions."""
    from peft import PrefixTuningConfig, PromptTuningConfig, get_peft_model

    model = load_base(config, source)
    if config.finetuning_type == "ptuning_v2":
        peft_config = PrefixTuningConfig(
            task_type="CAUSAL_LM",
            num_virtual_tokens=config.num_virtual_tokens,
            prefix_projection=config.prefix_projection,
        )
    else:
        peft_config = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=config.num_virtual_tokens)
    return get_peft_model(model, peft_config)
