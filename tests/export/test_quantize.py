"""Quantized exports reload the documented way, generate, and record size and perplexity change."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from services.export.pipeline import export_to_dir
from shared.schemas.export import ExportConfig, ExportManifest

from ._helpers import fixed_inputs


def _export(adapter: Path, out: Path, method: str, bits: int) -> ExportManifest:
    config = ExportConfig(
        adapter_name_or_path=str(adapter),
        export_quantization_bit=bits,
        export_quantization_method=method,
        verify_max_new_tokens=2,
    )
    manifest = export_to_dir(config, out)
    report = manifest.quantization
    assert report is not None and report.bits == bits and report.method.value == method
    assert report.size_after_bytes < report.size_before_bytes
    assert math.isfinite(report.perplexity_after) and report.calibration_tokens > 100
    assert report.perplexity_change == pytest.approx(report.perplexity_after - report.perplexity_before)
    stored = json.loads((out / "manifest.json").read_text())["quantization"]
    assert stored["perplexity_change"] == pytest.approx(report.perplexity_change)
    return manifest


def _generates(model, base_dir: Path) -> None:  # type: ignore[no-untyped-def]
    ids = fixed_inputs(base_dir)[0]
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=3, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 3


@pytest.mark.parametrize("bits", [4, pytest.param(8, marks=pytest.mark.slow)])
def test_quanto_weight_only(tiny_model_dir: Path, lora_adapter: Path, tmp_path: Path, bits: int) -> None:
    from optimum.quanto import QuantizedModelForCausalLM

    _export(lora_adapter, tmp_path / "q", "quanto", bits)
    model = QuantizedModelForCausalLM.from_pretrained(str(tmp_path / "q"))
    q_proj = model.model.layers[0].self_attn.q_proj
    assert type(q_proj).__name__ == "QLinear" and f"int{bits}" in str(q_proj.weight_qtype)
    _generates(model, tiny_model_dir)


def test_bitsandbytes_8bit_reloads_with_from_pretrained(
    tiny_model_dir: Path, lora_adapter: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    _export(lora_adapter, tmp_path / "bnb8", "bitsandbytes", 8)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "bnb8", device_map="cpu")
    assert type(model.model.layers[0].self_attn.q_proj).__name__ == "Linear8bitLt"
    _generates(model, tiny_model_dir)


@pytest.mark.slow
def test_bitsandbytes_4bit_on_cpu_with_block_aligned_layers(tmp_path: Path) -> None:
    """bitsandbytes' CPU 4-bit kernel needs out_features in multiples of 32: a tiny model that has them works."""
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM

    from shared.modelkit import TinyModelSpec, build_tiny_model

    from ._helpers import make_adapter

    base = build_tiny_model(TinyModelSpec(intermediate_size=128), tmp_path / "base")
    adapter = make_adapter(base, LoraConfig(r=4, target_modules="all-linear"), tmp_path / "adapter", steps=1)
    _export(adapter, tmp_path / "bnb4", "bitsandbytes", 4)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "bnb4", device_map="cpu")
    assert type(model.model.layers[0].mlp.up_proj).__name__ == "Linear4bit"
    _generates(model, base)
