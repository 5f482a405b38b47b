"""ONNX (run in onnxruntime), TorchScript and Ollama exports, checked against the PyTorch model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from services.export.errors import ExportError
from services.export.pipeline import export_to_dir
from shared.schemas.export import ExportConfig

from ._helpers import fixed_inputs, peft_reference


@pytest.fixture(scope="module")
def merged_reference(tiny_model_dir: Path, lora_adapter: Path):  # type: ignore[no-untyped-def]
    """The PyTorch model every format must reproduce: base + LoRA, merged by peft in the test itself."""
    return peft_reference(tiny_model_dir, lora_adapter).merge_and_unload().eval()


def test_onnx_matches_pytorch_in_onnxruntime_with_cache(
    tiny_model_dir: Path, lora_adapter: Path, merged_reference, tmp_path: Path
) -> None:
    import onnxruntime as ort

    out = tmp_path / "onnx"
    config = ExportConfig(adapter_name_or_path=str(lora_adapter), export_format="onnx", verify_max_new_tokens=3)
    manifest = export_to_dir(config, out)
    checks = {c.name: c.value for c in manifest.verification}
    assert checks["onnx_logits"] <= 1e-3 and checks["onnx_padded_batch_logits"] <= 1e-3
    assert checks["onnx_greedy_generation"] == 0
    assert (out / "tokenizer.json").is_file() and (out / "config.json").is_file()

    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    past_names = [i.name for i in session.get_inputs() if i.name.startswith("past_key_values.")]
    kv_heads, head_dim = 2, 16  # tiny Qwen2: 4 heads of 16 dims, 2 key/value heads
    for ids in fixed_inputs(tiny_model_dir):
        prompt, n = ids.numpy(), ids.shape[1]
        # Prefill all but the last token, then feed the last one through the cache.
        feeds = {
            "input_ids": prompt[:, :-1],
            "attention_mask": np.ones((1, n - 1), np.int64),
            "position_ids": np.arange(n - 1)[None],
            **{name: np.zeros((1, kv_heads, 0, head_dim), np.float32) for name in past_names},
        }
        logits, *present = session.run(None, feeds)
        step = {
            "input_ids": prompt[:, -1:],
            "attention_mask": np.ones((1, n), np.int64),
            "position_ids": np.array([[n - 1]]),
            **dict(zip(past_names, present, strict=True)),
        }
        last, *_ = session.run(None, step)
        with torch.no_grad():
            want = merged_reference(ids).logits.numpy()
        assert np.abs(logits - want[:, :-1]).max() <= 1e-3
        assert np.abs(last - want[:, -1:]).max() <= 1e-3


def test_torchscript_matches_pytorch(
    tiny_model_dir: Path, lora_adapter: Path, merged_reference, tmp_path: Path
) -> None:
    out = tmp_path / "ts"
    config = ExportConfig(adapter_name_or_path=str(lora_adapter), export_format="torchscript", verify_max_new_tokens=3)
    export_to_dir(config, out)
    module = torch.jit.load(str(out / "model.pt"))
    with torch.no_grad():
        for ids in fixed_inputs(tiny_model_dir):  # lengths differ from the traced example's
            assert (module(ids) - merged_reference(ids).logits).abs().max() <= 1e-5


def test_ollama_modelfile_carries_the_chat_template(lora_adapter: Path, tmp_path: Path) -> None:
    out = tmp_path / "ollama"
    config = ExportConfig(adapter_name_or_path=str(lora_adapter), export_format="ollama", verify_max_new_tokens=2)
    manifest = export_to_dir(config, out)
    modelfile = (out / "Modelfile").read_text()
    assert modelfile.splitlines()[1] == "FROM ."
    assert '{{ range .Messages }}{{ if eq .Role "user" }}<|im_start|>user\n{{ .Content }}<|im_end|>' in modelfile
    assert 'SYSTEM """You are a helpful assistant."""' in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile
    assert (out / "model.safetensors").is_file()
    assert any(c.name == "ollama_template" and c.passed for c in manifest.verification)


def test_ollama_refuses_a_template_it_cannot_translate(tiny_model_dir: Path, tmp_path: Path) -> None:
    base = tmp_path / "llama3-style"
    shutil.copytree(tiny_model_dir, base)
    (base / "chat_template.jinja").write_text(
        "{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>"
        "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
    )
    with pytest.raises(ExportError, match="translates only ChatML-family chat templates"):
        export_to_dir(ExportConfig(model_name_or_path=str(base), export_format="ollama"), tmp_path / "out")
    assert not (tmp_path / "out").exists()
