"""ONNX export with past key values (optimum's input/output names), checked in onnxruntime."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from shared.schemas.export import VerificationCheck

from .verify import close_check, same_tokens_check

OPSET = 17  # onnxruntime 1.31 runs it everywhere; nothing here needs a newer operator
LOGITS_TOLERANCE = 1e-3


def _cache_shape(config: Any) -> tuple[int, int, int]:
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    return config.num_hidden_layers, kv_heads, head_dim


def _cache_names(layers: int, prefix: str) -> list[str]:
    return [f"{prefix}.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]


def _decoder_with_past(model: Any) -> Any:
    """A module taking and returning the cache as flat tensors, which is all ONNX can carry."""
    import torch
    from transformers import DynamicCache

    layers = model.config.num_hidden_layers

    class DecoderWithPast(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, position_ids: Any, *past: Any) -> tuple[Any, ...]:
            cache = DynamicCache(config=self.model.config)
            for i in range(layers):
                cache.update(past[2 * i], past[2 * i + 1], i)
            out = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                past_key_values=cache,
                use_cache=True,
            )
            present = [t for layer in out.past_key_values.layers for t in (layer.keys, layer.values)]
            return (out.logits, *present)

    return DecoderWithPast().eval()


def export_onnx(model: Any, out: Path) -> Path:
    """Write `out/model.onnx`: inputs input_ids, attention_mask, position_ids, past_key_values.{i}.key/value."""
    import torch

    layers, kv_heads, head_dim = _cache_shape(model.config)
    past_names, present_names = _cache_names(layers, "past_key_values"), _cache_names(layers, "present")
    # A non-empty past while tracing, so the cache concatenation is recorded; length 0 still runs.
    example = (
        torch.ones(1, 3, dtype=torch.long),
        torch.ones(1, 5, dtype=torch.long),
        torch.tensor([[2, 3, 4]]),
        *(torch.zeros(1, kv_heads, 2, head_dim) for _ in past_names),
    )
    axes: dict[str, dict[int, str]] = {
        "input_ids": {0: "batch", 1: "sequence"},
        "attention_mask": {0: "batch", 1: "total_sequence"},
        "position_ids": {0: "batch", 1: "sequence"},
        "logits": {0: "batch", 1: "sequence"},
        **{name: {0: "batch", 2: "past_sequence"} for name in past_names},
        **{name: {0: "batch", 2: "total_sequence"} for name in present_names},
    }
    path = out / "model.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python branches on shapes: checked below
        # The TorchScript-based exporter: the dynamo one needs onnxscript, which is not installed.
        torch.onnx.export(
            _decoder_with_past(model),
            example,
            str(path),
            input_names=["input_ids", "attention_mask", "position_ids", *past_names],
            output_names=["logits", *present_names],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def _onnx_greedy(session: Any, ids: Any, config: Any, max_new_tokens: int) -> tuple[list[int], list[Any]]:
    """Greedy decoding through the ONNX cache: prefill once, then one token per step."""
    import numpy as np

    layers, kv_heads, head_dim = _cache_shape(config)
    prompt = ids.numpy()
    feeds: dict[str, Any] = {
        "input_ids": prompt,
        "attention_mask": np.ones_like(prompt),
        "position_ids": np.arange(prompt.shape[1])[None, :],
        **{n: np.zeros((1, kv_heads, 0, head_dim), np.float32) for n in _cache_names(layers, "past_key_values")},
    }
    tokens: list[int] = []
    step_logits = []
    for _ in range(max_new_tokens):
        logits, *present = session.run(None, feeds)
        step_logits.append(logits)
        tokens.append(int(logits[0, -1].argmax()))
        length = prompt.shape[1] + len(tokens)
        feeds = {
            "input_ids": np.array([[tokens[-1]]]),
            "attention_mask": np.ones((1, length), np.int64),
            "position_ids": np.array([[length - 1]]),
            **dict(zip(_cache_names(layers, "past_key_values"), present, strict=True)),
        }
    return tokens, step_logits


def _padded_batch_diff(session: Any, model: Any, inputs: list[Any]) -> float:
    """Run all inputs as one left-padded batch; compare each row's real positions with PyTorch alone."""
    import numpy as np
    import torch

    layers, kv_heads, head_dim = _cache_shape(model.config)
    width = max(ids.shape[1] for ids in inputs)
    batch = np.zeros((len(inputs), width), np.int64)
    mask = np.zeros_like(batch)
    for row, ids in enumerate(inputs):
        batch[row, width - ids.shape[1] :] = ids[0].numpy()
        mask[row, width - ids.shape[1] :] = 1
    feeds = {
        "input_ids": batch,
        "attention_mask": mask,
        "position_ids": np.clip(mask.cumsum(-1) - 1, 0, None),
        **{
            n: np.zeros((len(inputs), kv_heads, 0, head_dim), np.float32)
            for n in _cache_names(layers, "past_key_values")
        },
    }
    logits = session.run(["logits"], feeds)[0]
    worst = 0.0
    with torch.no_grad():
        for row, ids in enumerate(inputs):
            want = model(input_ids=ids).logits[0].numpy()
            worst = max(worst, float(abs(logits[row, width - ids.shape[1] :] - want).max()))
    return worst


def check_onnx(
    path: Path, model: Any, inputs: list[Any], expected_tokens: list[list[int]], max_new_tokens: int
) -> list[VerificationCheck]:
    """Run the ONNX file in onnxruntime: logits of every step (prefill and cached) and greedy tokens."""
    import onnx
    import onnxruntime as ort
    import torch

    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst, generated = 0.0, []
    for ids in inputs:
        tokens, step_logits = _onnx_greedy(session, ids, model.config, max_new_tokens)
        generated.append(tokens)
        full = torch.cat([ids, torch.tensor([tokens[:-1]])], dim=1)
        with torch.no_grad():
            want = model(input_ids=full).logits[0].numpy()
        got = [step_logits[0][0], *(s[0] for s in step_logits[1:])]
        start = 0
        for chunk in got:  # the prefill covers the prompt; each later step one position
            worst = max(worst, float(abs(want[start : start + len(chunk)] - chunk).max()))
            start += len(chunk)
    return [
        close_check(
            "onnx_logits",
            worst,
            LOGITS_TOLERANCE,
            "max |logits| difference, onnxruntime vs PyTorch, prefill and cached steps",
        ),
        same_tokens_check(
            "onnx_greedy_generation", expected_tokens, generated, "greedy tokens through the ONNX KV cache"
        ),
        close_check(
            "onnx_padded_batch_logits",
            _padded_batch_diff(session, model, inputs),
            LOGITS_TOLERANCE,
            "max |logits| difference, prompts as one left-padded batch in onnxruntime vs each alone in PyTorch",
        ),
    ]
