"""TrainJobConfig: LLaMA-Factory names and defaults, refusals that name the field, listed ignored keys."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.schemas.training import TrainJobConfig

BASE = {"model_name_or_path": "some/model"}


def test_llamafactory_defaults_and_alias() -> None:
    config = TrainJobConfig.model_validate({**BASE, "lora_rank": 16, "pre_seq_len": 32})
    assert config.resolved_lora_alpha == 32  # 2 x rank, as LLaMA-Factory
    assert config.num_virtual_tokens == 32
    assert config.lora_target_modules == "all-linear"
    assert config.gradient_checkpointing  # LLaMA-Factory's default
    assert TrainJobConfig.model_validate({**BASE, "lora_target": "q_proj, v_proj"}).lora_target_modules == [
        "q_proj",
        "v_proj",
    ]


def test_unknown_keys_are_named() -> None:
    with pytest.raises(ValidationError, match="unknown training config keys: lora_rnak, tempreature"):
        TrainJobConfig.model_validate({**BASE, "lora_rnak": 8, "tempreature": 1})


def test_ignored_keys_are_listed_in_a_warning() -> None:
    with pytest.warns(UserWarning, match=r"do_train .*overwrite_cache"):
        config = TrainJobConfig.model_validate({**BASE, "do_train": True, "overwrite_cache": True})
    assert "do_train" not in config.model_dump()


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"bf16": True, "fp16": True}, "bf16 and fp16"),
        ({"quantization_bit": 4, "finetuning_type": "full"}, "quantization_bit"),
        ({"gradient_checkpointing": True, "disable_gradient_checkpointing": True}, "disable_gradient_checkpointing"),
        ({"max_steps": -1, "num_train_epochs": 0}, "max_steps and num_train_epochs"),
        ({"warmup_ratio": 0.1, "warmup_steps": 5}, "warmup_ratio and warmup_steps"),
        ({"eval_strategy": "steps"}, "val_size"),
        ({"finetuning_type": "ptuning_v2", "gradient_checkpointing": True}, "gradient_checkpointing"),
        ({"finetuning_type": "prompt", "packing": True}, "packing"),
        ({"quantization_bit": 3}, "quantization_bit"),
        ({"lora_rank": 0}, "lora_rank"),
    ],
)
def test_contradictions_fail_naming_the_field(extra: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        TrainJobConfig.model_validate({**BASE, **extra})


def test_disable_gradient_checkpointing_turns_it_off() -> None:
    assert not TrainJobConfig.model_validate({**BASE, "disable_gradient_checkpointing": True}).gradient_checkpointing
