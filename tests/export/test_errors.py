"""Bad inputs fail with a message naming the problem and leave no partial artefact behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from services.export import pipeline
from services.export.config import load_export_config
from services.export.errors import ExportError
from services.export.pipeline import export_to_dir
from shared.schemas.export import ExportConfig

from ._helpers import make_adapter


def _fails(tmp_path: Path, match: str, **config: object) -> None:
    """Run an export that must fail with `match`, then check nothing was left where it would have gone."""
    parent = tmp_path / "exports"
    with pytest.raises(ExportError, match=match):
        export_to_dir(ExportConfig(verify_max_new_tokens=2, **config), parent / "out")
    assert not parent.exists() or list(parent.iterdir()) == []


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_missing_adapter(tmp_path: Path) -> None:
    _fails(tmp_path, "adapter_name_or_path .*not found", adapter_name_or_path=str(tmp_path / "nope"))


def test_full_model_given_as_adapter(tmp_path: Path, tiny_model_dir: Path) -> None:
    _fails(tmp_path, "no adapter_config.json; it holds a full model", adapter_name_or_path=str(tiny_model_dir))


def test_corrupted_adapter_config(tmp_path: Path, lora_adapter: Path) -> None:
    adapter = _copy(lora_adapter, tmp_path / "adapter")
    (adapter / "adapter_config.json").write_text('{"peft_type": "LORA", ')
    _fails(tmp_path, "adapter_config.json in .* is corrupted", adapter_name_or_path=str(adapter))


def test_corrupted_adapter_weights(tmp_path: Path, lora_adapter: Path) -> None:
    adapter = _copy(lora_adapter, tmp_path / "adapter")
    _truncate(adapter / "adapter_model.safetensors")
    _fails(tmp_path, "does not load onto base model .*corrupted checkpoint", adapter_name_or_path=str(adapter))


def test_missing_adapter_weights(tmp_path: Path, lora_adapter: Path) -> None:
    adapter = _copy(lora_adapter, tmp_path / "adapter")
    (adapter / "adapter_model.safetensors").unlink()
    _fails(tmp_path, "no adapter_model.safetensors", adapter_name_or_path=str(adapter))


def test_corrupted_base_checkpoint(tmp_path: Path, tiny_model_dir: Path, lora_adapter: Path) -> None:
    base = _copy(tiny_model_dir, tmp_path / "base")
    _truncate(base / "model.safetensors")
    _fails(
        tmp_path,
        "base model .* cannot be loaded \\(missing or corrupted checkpoint\\)",
        model_name_or_path=str(base),
        adapter_name_or_path=str(lora_adapter),
    )


def test_missing_base(tmp_path: Path) -> None:
    _fails(tmp_path, "model_name_or_path .* cannot be read", model_name_or_path=str(tmp_path / "gone"))


def test_adapter_for_another_architecture(tmp_path: Path, tiny_model_dir: Path, llama_adapter: Path) -> None:
    # Same tensor shapes: only the recorded base's config tells them apart.
    _fails(
        tmp_path,
        "was trained on base .*tiny-llama.* which differs from model_name_or_path .*model_type 'llama' != 'qwen2'",
        model_name_or_path=str(tiny_model_dir),
        adapter_name_or_path=str(llama_adapter),
    )


def test_adapter_with_other_shapes_and_unreadable_base(tmp_path: Path, tiny_model_dir: Path) -> None:
    from peft import LoraConfig

    from shared.modelkit import TinyModelSpec, build_tiny_model

    small = build_tiny_model(TinyModelSpec(hidden_size=32, heads=2, kv_heads=1), tmp_path / "small")
    adapter = make_adapter(small, LoraConfig(r=2, target_modules=["q_proj"]), tmp_path / "adapter", steps=1)
    shutil.rmtree(small)  # the recorded base is gone: shapes are all that is left to check
    _fails(
        tmp_path,
        "(?s)does not load onto base model .*size mismatch",
        model_name_or_path=str(tiny_model_dir),
        adapter_name_or_path=str(adapter),
    )


def test_quantized_base_is_refused(tmp_path: Path, tiny_model_dir: Path, lora_adapter: Path) -> None:
    base = _copy(tiny_model_dir, tmp_path / "base")
    config = json.loads((base / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (base / "config.json").write_text(json.dumps(config))
    _fails(
        tmp_path,
        "is a bitsandbytes quantized model: adapters are merged into the full-precision base",
        model_name_or_path=str(base),
        adapter_name_or_path=str(lora_adapter),
    )


def test_unsupported_combinations_are_refused_at_submission(tmp_path: Path) -> None:
    config = tmp_path / "export.yaml"
    config.write_text("model_name_or_path: some/model\nexport_format: onnx\n")
    with pytest.raises(ExportError, match="export_quantization_bit is not supported with export_format=onnx"):
        load_export_config(config, ["export_quantization_bit=4"])
    with pytest.raises(ExportError, match="export_quantization_bit: Input should be 4 or 8"):
        load_export_config(config, ["export_format=merged", "export_quantization_bit=3"])
    with pytest.raises(ExportError, match="export_size: Input should be greater than 0"):
        load_export_config(config, ["export_size=0"])
    with pytest.raises(ExportError, match="nothing to export"):
        load_export_config(None, [])


def test_gptq_without_gpu_is_refused(tmp_path: Path, lora_adapter: Path) -> None:
    _fails(
        tmp_path,
        "gptq needs a CUDA GPU",
        adapter_name_or_path=str(lora_adapter),
        export_quantization_bit=4,
        export_quantization_method="gptq",
    )


def test_failed_verification_publishes_nothing_and_keeps_the_previous_export(
    tmp_path: Path, lora_adapter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = tmp_path / "exports" / "out"
    previous.mkdir(parents=True)
    (previous / "model.safetensors").write_text("the last good export")
    monkeypatch.setattr(pipeline, "MERGE_TOLERANCE", -1.0)  # every merge now "fails" its check
    with pytest.raises(ExportError, match="export verification failed: merge_logits"):
        export_to_dir(ExportConfig(adapter_name_or_path=str(lora_adapter), verify_max_new_tokens=2), previous)
    assert [p.name for p in (tmp_path / "exports").iterdir()] == ["out"]
    assert [p.name for p in previous.iterdir()] == ["model.safetensors"]


def test_export_dir_may_not_replace_its_own_source(tmp_path: Path, lora_adapter: Path) -> None:
    adapter = _copy(lora_adapter, tmp_path / "adapter")
    with pytest.raises(ExportError, match="export_dir .* would replace adapter_name_or_path"):
        export_to_dir(ExportConfig(adapter_name_or_path=str(adapter)), tmp_path)
    assert (adapter / "adapter_model.safetensors").is_file()
