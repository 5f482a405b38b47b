"""Weight quantization of a merged model folder: optimum-quanto (any CPU), bitsandbytes, GPTQ (CUDA)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from shared.modelkit import pick_device
from shared.schemas.export import QuantizationMethod

from .errors import ExportError

BNB_CPU_BLOCK = 32  # bitsandbytes 0.50 repacks 4-bit weights for CPU inference in blocks of 32 output rows
RELOAD_HINTS = {
    QuantizationMethod.QUANTO: "optimum.quanto.QuantizedModelForCausalLM.from_pretrained(export_dir)",
    QuantizationMethod.BITSANDBYTES: "transformers.AutoModelForCausalLM.from_pretrained(export_dir) "
    "with bitsandbytes installed",
    QuantizationMethod.GPTQ: "transformers.AutoModelForCausalLM.from_pretrained(export_dir) on a CUDA GPU "
    "with gptqmodel installed",
}


def weight_bytes(folder: Path) -> int:
    """Total size of the safetensors weight files in `folder`."""
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def check_supported(method: QuantizationMethod, bits: int, model: Any) -> None:
    """Refuse, before any work, a quantization this machine cannot run or reload on `model`'s shapes."""
    device = pick_device()
    if method is QuantizationMethod.GPTQ:
        _check_gptq_available()
    elif method is QuantizationMethod.BITSANDBYTES and bits == 4 and device == "cpu":
        _check_bnb_4bit_cpu(model)


def _check_bnb_4bit_cpu(model: Any) -> None:
    import torch

    odd = [
        f"{name} ({module.out_features})"
        for name, module in model.named_modules()
        # lm_head stays unquantized; adapter matrices are merged away before quantization.
        if isinstance(module, torch.nn.Linear)
        and not name.endswith("lm_head")
        and ".lora_" not in name
        and module.out_features % BNB_CPU_BLOCK
    ]
    if odd:
        raise ExportError(
            "export_quantization_method=bitsandbytes with export_quantization_bit=4 cannot run on this CPU: "
            f"bitsandbytes 0.50 repacks 4-bit weights in blocks of {BNB_CPU_BLOCK} output features for CPU "
            f"inference and these layers are not multiples of {BNB_CPU_BLOCK}: {', '.join(odd[:4])}. "
            "Use export_quantization_method=quanto, 8 bits, or a CUDA GPU"
        )


def _bitsandbytes(merged_dir: Path, bits: int, device: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if bits == 8:
        config = BitsAndBytesConfig(load_in_8bit=True)
    else:
        compute = torch.bfloat16 if device == "cuda" else torch.float32
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute)
    return AutoModelForCausalLM.from_pretrained(merged_dir, quantization_config=config, device_map=device)


def _check_gptq_available() -> None:
    import torch

    missing = [
        what
        for what, ok in (
            ("a CUDA GPU", torch.cuda.is_available()),
            ("the gptqmodel library (pip install '.[gpu]')", importlib.util.find_spec("gptqmodel") is not None),
        )
        if not ok
    ]
    if missing:
        raise ExportError(
            f"export_quantization_method=gptq needs {' and '.join(missing)}, which this worker lacks; "
            "use export_quantization_method=quanto or bitsandbytes"
        )


def _gptq(merged_dir: Path, bits: int, tokenizer: Any, texts: list[str]) -> Any:
    from transformers import AutoModelForCausalLM, GPTQConfig

    config = GPTQConfig(bits=bits, dataset=texts, tokenizer=tokenizer)
    return AutoModelForCausalLM.from_pretrained(merged_dir, quantization_config=config, device_map="cuda")


def quantize_folder(
    merged_dir: Path,
    out: Path,
    *,
    bits: int,
    method: QuantizationMethod,
    tokenizer: Any,
    texts: list[str],
    export_size: float,
) -> None:
    """Quantize the full-precision folder `merged_dir` and save the result (with tokenizer) to `out`."""
    shard = max(int(export_size * 1e9), 1)
    if method is QuantizationMethod.QUANTO:
        from optimum.quanto import QuantizedModelForCausalLM, qint4, qint8
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(merged_dir)
        # lm_head stays full precision: it is the layer most sensitive to quantization (quanto's own advice).
        qmodel = QuantizedModelForCausalLM.quantize(model, weights=qint8 if bits == 8 else qint4, exclude="lm_head")
        qmodel.save_pretrained(out)  # quanto writes its own shards and the quantization map
    elif method is QuantizationMethod.BITSANDBYTES:
        _bitsandbytes(merged_dir, bits, pick_device()).save_pretrained(out, max_shard_size=shard)
    else:
        _gptq(merged_dir, bits, tokenizer, texts).save_pretrained(out, max_shard_size=shard)
    tokenizer.save_pretrained(out)


def load_quantized(folder: Path, method: QuantizationMethod) -> Any:
    """Reload a quantized export the way a user would."""
    if method is QuantizationMethod.QUANTO:
        from optimum.quanto import QuantizedModelForCausalLM

        return QuantizedModelForCausalLM.from_pretrained(str(folder))
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, device_map=pick_device()).eval()
