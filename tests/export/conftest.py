"""Adapters made directly with peft on the tiny models: trained a few steps, so their weights matter."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._helpers import make_adapter


@pytest.fixture(scope="session")
def lora_adapter(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LoRA on every linear layer of the tiny Qwen2."""
    from peft import LoraConfig

    return make_adapter(tiny_model_dir, LoraConfig(r=4, target_modules="all-linear"), tmp_path_factory.mktemp("lora"))


@pytest.fixture(scope="session")
def dora_adapter(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DoRA (weight-decomposed LoRA) on the attention projections."""
    from peft import LoraConfig

    config = LoraConfig(r=4, use_dora=True, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    return make_adapter(tiny_model_dir, config, tmp_path_factory.mktemp("dora"))


@pytest.fixture(scope="session")
def prefix_adapter(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """P-Tuning v2 style prefix tuning: cannot be merged."""
    from peft import PrefixTuningConfig

    config = PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4)
    return make_adapter(tiny_model_dir, config, tmp_path_factory.mktemp("prefix"))


@pytest.fixture(scope="session")
def llama_adapter(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LoRA made on the tiny Llama, which has exactly the tiny Qwen2's tensor shapes."""
    from peft import LoraConfig

    return make_adapter(
        tiny_llama_dir, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]), tmp_path_factory.mktemp("llama-lora")
    )
