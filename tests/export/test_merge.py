"""Merging LoRA / DoRA / QLoRA adapters: the exported folder computes exactly what base + adapter computed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from services.export.manifest import verify_files
from services.export.pipeline import export_to_dir
from shared.schemas.export import ExportConfig, ExportManifest

from ._helpers import fixed_inputs, peft_reference


def _assert_same_as_adapter(export_dir: Path, base_dir: Path, adapter_dir: Path) -> float:
    from transformers import AutoModelForCausalLM, GenerationConfig

    merged = AutoModelForCausalLM.from_pretrained(export_dir).eval()
    reference = peft_reference(base_dir, adapter_dir)
    greedy = GenerationConfig(max_new_tokens=6, do_sample=False, pad_token_id=0)
    worst = 0.0
    with torch.no_grad():
        for ids in fixed_inputs(base_dir):
            worst = max(worst, float((merged(ids).logits - reference(input_ids=ids).logits).abs().max()))
            mask = torch.ones_like(ids)
            assert torch.equal(
                merged.generate(input_ids=ids, attention_mask=mask, generation_config=greedy),
                reference.generate(input_ids=ids, attention_mask=mask, generation_config=greedy),
            )
    assert worst <= 1e-4
    return worst


def test_lora_merge_is_exact_sharded_and_complete(tiny_model_dir: Path, lora_adapter: Path, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    config = ExportConfig(adapter_name_or_path=str(lora_adapter), export_size=0.0004, verify_max_new_tokens=4)
    manifest = export_to_dir(config, out, export_id="exp-1")

    _assert_same_as_adapter(out, tiny_model_dir, lora_adapter)
    shards = sorted(out.glob("model-*.safetensors"))
    assert len(shards) >= 3
    for shard in shards:  # only a single tensor larger than the limit may exceed it
        with safe_open(shard, "pt") as fh:
            assert shard.stat().st_size <= 400_000 or len(list(fh.keys())) == 1
    assert json.loads((out / "model.safetensors.index.json").read_text())["weight_map"]
    assert (out / "chat_template.jinja").read_text() == (tiny_model_dir / "chat_template.jinja").read_text()
    assert json.loads((out / "generation_config.json").read_text())["eos_token_id"] is not None
    # The manifest on disk is the one returned, and its checksums match the files.
    on_disk = ExportManifest.model_validate_json((out / "manifest.json").read_text())
    assert on_disk.export_id == "exp-1" and on_disk.method == "lora" and on_disk.merged
    assert on_disk.base_model == str(tiny_model_dir) and verify_files(out, on_disk) == []
    checks = {c.name: c for c in manifest.verification}
    assert checks["merge_logits"].passed and checks["merge_logits"].value <= 1e-4
    assert checks["merge_greedy_generation"].value == 0
    assert not list(tmp_path.glob(".merged.tmp-*"))  # the scratch folder is gone


def test_dora_merge_matches(tiny_model_dir: Path, dora_adapter: Path, tmp_path: Path) -> None:
    config = ExportConfig(adapter_name_or_path=str(dora_adapter), verify_max_new_tokens=4)
    manifest = export_to_dir(config, tmp_path / "dora")
    assert manifest.method == "dora"
    _assert_same_as_adapter(tmp_path / "dora", tiny_model_dir, dora_adapter)


def test_qlora_adapter_merges_into_full_precision_base(tiny_model_dir: Path, tmp_path: Path) -> None:
    """An adapter made on a 4-bit bitsandbytes base is merged into the float32 weights it was quantized from."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantized = AutoModelForCausalLM.from_pretrained(
        tiny_model_dir,
        quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float32),
        device_map="cpu",
    )
    model = get_peft_model(quantized, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    assert type(model.base_model.model.model.layers[0].self_attn.q_proj.base_layer).__name__ == "Linear4bit"
    torch.manual_seed(1)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            param.data = torch.randn_like(param) * 0.1  # stands in for training: a non-zero update
    adapter = tmp_path / "qlora"
    model.save_pretrained(adapter)

    out = tmp_path / "merged"
    export_to_dir(ExportConfig(adapter_name_or_path=str(adapter), verify_max_new_tokens=4), out)
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    _assert_same_as_adapter(out, tiny_model_dir, adapter)


def test_prefix_tuning_is_exported_as_adapter(tiny_model_dir: Path, prefix_adapter: Path, tmp_path: Path) -> None:
    out = tmp_path / "prefix"
    manifest = export_to_dir(ExportConfig(adapter_name_or_path=str(prefix_adapter), verify_max_new_tokens=4), out)
    assert not manifest.merged and manifest.method == "prefix_tuning"
    assert any("cannot be merged" in m for m in manifest.messages)
    assert (out / "adapter_config.json").is_file() and not list(out.glob("model*.safetensors"))
    exported, source = peft_reference(tiny_model_dir, out), peft_reference(tiny_model_dir, prefix_adapter)
    with torch.no_grad():
        for ids in fixed_inputs(tiny_model_dir):
            assert torch.allclose(exported(input_ids=ids).logits, source(input_ids=ids).logits, atol=1e-6)


@pytest.mark.parametrize("fmt", ["onnx", "ollama"])
def test_prefix_tuning_refuses_formats_that_need_merged_weights(prefix_adapter: Path, tmp_path: Path, fmt: str) -> None:
    from services.export.errors import ExportError

    with pytest.raises(ExportError, match=f"prefix_tuning adapters cannot be merged.*export_format={fmt}"):
        export_to_dir(ExportConfig(adapter_name_or_path=str(prefix_adapter), export_format=fmt), tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


def test_half_precision_base_keeps_its_dtype(tiny_model_dir: Path, lora_adapter: Path, tmp_path: Path) -> None:
    """The merge runs in float32; the export is written in the base's bfloat16 and reloads bit for bit."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16).save_pretrained(base)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(base)
    out = tmp_path / "merged"
    config = ExportConfig(model_name_or_path=str(base), adapter_name_or_path=str(lora_adapter), verify_max_new_tokens=2)
    manifest = export_to_dir(config, out)

    assert manifest.dtype == "bfloat16" and json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    with safe_open(out / "model.safetensors", "pt") as fh:
        assert {fh.get_tensor(k).dtype for k in list(fh.keys())} == {torch.bfloat16}
    checks = {c.name: c for c in manifest.verification}
    assert checks["merge_logits"].value <= 1e-4 and checks["merged_reload_weights"].value == 0.0
