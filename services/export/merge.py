"""Load a base model and its adapter, check that they belong together, and merge them."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.modelkit import load_model, load_tokenizer, resolve_model_source

from .errors import ExportError

# Config fields that must agree between the base an adapter was trained on and the base it is applied to.
ARCH_FIELDS = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "intermediate_size",
    "vocab_size",
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


@dataclass
class AdapterInfo:
    """What an adapter folder says about itself."""

    path: Path
    method: str  # lora, dora, prefix_tuning, p_tuning, prompt_tuning, ...
    base_name: str | None
    prompt_learning: bool  # adds virtual tokens instead of weight deltas: cannot be merged
    config: dict[str, Any]


@dataclass
class Source:
    """A loaded model ready to export: the PEFT model (adapter applied, unmerged) or the bare base."""

    model: Any
    tokenizer: Any
    base_source: str
    adapter: AdapterInfo | None
    dtype: Any  # dtype the base was stored in; the export keeps it
    messages: list[str] = field(default_factory=list)


def inspect_adapter(source: str) -> AdapterInfo:
    """Read `adapter_config.json` from an adapter folder or `store://` prefix, refusing what is not one."""
    try:
        path = Path(resolve_model_source(source))
    except (FileNotFoundError, ValueError) as exc:
        raise ExportError(f"adapter_name_or_path {source!r} not found (missing checkpoint?): {exc}") from exc
    if not path.is_dir():
        raise ExportError(f"adapter_name_or_path {source!r} not found: no such folder (missing checkpoint?)")
    config_file = path / "adapter_config.json"
    if not config_file.is_file():
        hint = " it holds a full model: give it as model_name_or_path" if (path / "config.json").is_file() else ""
        raise ExportError(f"adapter_name_or_path {source!r} has no adapter_config.json;{hint or ' not a PEFT adapter'}")
    try:
        config = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportError(f"adapter_config.json in {source!r} is corrupted: {exc}") from exc
    if not any(path.glob("adapter_model.*")):
        raise ExportError(f"adapter {source!r} has no adapter_model.safetensors (missing or partial checkpoint)")
    peft_type = str(config.get("peft_type", "")).lower()
    method = "dora" if peft_type == "lora" and config.get("use_dora") else peft_type
    prompt_learning = peft_type in {"prefix_tuning", "p_tuning", "prompt_tuning", "multitask_prompt_tuning"}
    return AdapterInfo(path, method, config.get("base_model_name_or_path"), prompt_learning, config)


def _read_config(source: str, what: str) -> dict[str, Any]:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(resolve_model_source(source)).to_dict()
    except (OSError, ValueError) as exc:
        raise ExportError(f"{what} {source!r} cannot be read (missing or corrupted checkpoint): {exc}") from exc


def check_same_architecture(adapter: AdapterInfo, base_source: str, base_config: dict[str, Any]) -> list[str]:
    """Refuse an adapter whose recorded base differs in architecture from `base_source`; return notes.

    Shape checks alone miss two models of equal size (a Llama and a Qwen2 of the same dims), so the
    recorded base's config is compared field by field when it can be read here.
    """
    recorded = adapter.base_name
    if not recorded or recorded == base_source:
        return []
    try:
        recorded_config = _read_config(recorded, "adapter base")
    except ExportError:
        return [f"adapter was trained on {recorded!r}, which is not readable here; checked tensor shapes only"]
    diffs = [
        f"{name} {recorded_config.get(name)!r} != {base_config.get(name)!r}"
        for name in ARCH_FIELDS
        if recorded_config.get(name) != base_config.get(name)
    ]
    if diffs:
        raise ExportError(
            f"adapter {str(adapter.path)!r} was trained on base {recorded!r}, which differs from "
            f"model_name_or_path {base_source!r}: {'; '.join(diffs)}"
        )
    return []


def load_base(base_source: str, dtype: Any) -> Any:
    try:
        model, info = load_model(base_source, dtype=dtype, output_loading_info=True)
    except Exception as exc:  # transformers and safetensors raise many types for a bad checkpoint
        raise ExportError(
            f"base model {base_source!r} cannot be loaded (missing or corrupted checkpoint): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    broken = {k: v for k, v in info.items() if k in ("missing_keys", "mismatched_keys") and v}
    if broken:
        raise ExportError(f"base model {base_source!r} checkpoint is incomplete: {broken}")
    return model.eval()


def _load_adapter(base: Any, adapter: AdapterInfo, base_source: str) -> Any:
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(base, str(adapter.path)).eval()
    except Exception as exc:  # size mismatches are RuntimeError, missing targets ValueError, bad files others
        raise ExportError(
            f"adapter {str(adapter.path)!r} does not load onto base model {base_source!r} "
            f"(different base model or corrupted checkpoint): {type(exc).__name__}: {exc}"
        ) from exc


def _load_tokenizer(adapter: AdapterInfo | None, base_source: str) -> Any:
    # Training saves the tokenizer beside the adapter when it changed the chat template: prefer that copy.
    if adapter and any((adapter.path / name).is_file() for name in TOKENIZER_FILES):
        return load_tokenizer(str(adapter.path))
    try:
        return load_tokenizer(base_source)
    except Exception as exc:
        raise ExportError(f"tokenizer of {base_source!r} cannot be loaded: {type(exc).__name__}: {exc}") from exc


def load_source(model_name_or_path: str | None, adapter_name_or_path: str | None) -> Source:
    """Load the base in float32 (so a merge is exact) with the adapter applied but not merged."""
    import torch

    adapter = inspect_adapter(adapter_name_or_path) if adapter_name_or_path else None
    base_source = model_name_or_path or (adapter.base_name if adapter else None)
    if not base_source:
        raise ExportError("model_name_or_path is unset and the adapter's config names no base model")
    base_config = _read_config(base_source, "model_name_or_path")
    if base_config.get("quantization_config"):
        method = base_config["quantization_config"].get("quant_method", "quantized")
        raise ExportError(
            f"model_name_or_path {base_source!r} is a {method} quantized model: adapters are merged into the "
            "full-precision base (also for QLoRA); point model_name_or_path at the original weights"
        )
    messages = check_same_architecture(adapter, base_source, base_config) if adapter else []
    stored = base_config.get("dtype") or base_config.get("torch_dtype") or "float32"
    model = load_base(base_source, torch.float32)
    if adapter:
        model = _load_adapter(model, adapter, base_source)
    tokenizer = _load_tokenizer(adapter, base_source)
    return Source(model, tokenizer, base_source, adapter, getattr(torch, str(stored)), messages)


def merge_adapter(source: Source) -> Any:
    """The plain transformers model with the adapter folded into its weights (the base, if no adapter)."""
    if source.adapter is None:
        return source.model
    if source.adapter.prompt_learning:
        raise ExportError(
            f"{source.adapter.method} adapters cannot be merged into the base weights: they add virtual "
            "tokens / key-values, not weight deltas"
        )
    return source.model.merge_and_unload()


def save_hf_folder(model: Any, tokenizer: Any, out: Path, *, export_size: float, dtype: Any) -> None:
    """Write sharded safetensors in `dtype`, configs, tokenizer and chat template; `model` itself is not cast.

    Casting the model in place would also cast buffers such as rotary frequencies, which transformers
    keeps in float32 when it loads a half-precision checkpoint; only the saved tensors are cast.
    """
    cast: dict[int, Any] = {}  # by storage, so tied weights stay one tensor
    state = {}
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() not in cast:
            cast[tensor.data_ptr()] = tensor.to(dtype) if tensor.is_floating_point() else tensor
        state[name] = cast[tensor.data_ptr()]
    # transformers counts a GB as 1e9 bytes, as LLaMA-Factory's f"{export_size}GB" does.
    model.save_pretrained(out, state_dict=state, max_shard_size=max(int(export_size * 1e9), 1))
    # save_pretrained records the in-memory dtype; the files hold `dtype`.
    config = copy.deepcopy(model.config)
    config.dtype = str(dtype).removeprefix("torch.")
    config.save_pretrained(out)
    tokenizer.save_pretrained(out)
