"""Numerical checks of an export against its source: logits, greedy generations, perplexity."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.schemas.export import VerificationCheck

from .errors import ExportError

DEFAULT_CALIBRATION = Path(__file__).with_name("calibration.txt")
PROMPTS = (
    "What is the capital of France?",
    "Write a haiku about rivers.",
    "Explain light and sound in one sentence.",
)


def sample_inputs(tokenizer: Any) -> list[Any]:
    """Fixed token-id tensors (1 x seq) to compare models on: chat-formatted where a template exists."""
    inputs = []
    for prompt in PROMPTS:
        if tokenizer.chat_template:
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        else:
            text = prompt
        inputs.append(tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"])
    return inputs


def logits_of(model: Any) -> Callable[[Any], Any]:
    """`ids -> float32 logits` for a transformers model, without gradients."""
    import torch

    def run(ids: Any) -> Any:
        with torch.no_grad():
            return model(input_ids=ids.to(model.device)).logits.float().cpu()

    return run


def max_abs_diff(expected: list[Any], got: list[Any]) -> float:
    """Largest absolute difference between two lists of logits, over all inputs and positions."""
    return max(float((want - have).abs().max()) for want, have in zip(expected, got, strict=True))


def max_logit_diff(expected: list[Any], candidate: Callable[[Any], Any], inputs: list[Any]) -> float:
    """Largest absolute difference between `expected` logits and `candidate`'s on the same inputs."""
    return max_abs_diff(expected, [candidate(ids) for ids in inputs])


def greedy_tokens(model: Any, inputs: list[Any], max_new_tokens: int) -> list[list[int]]:
    """Greedy continuations of each input with `generate`, running past EOS so every run has the same length."""
    import torch
    from transformers import GenerationConfig

    # No eos_token_id: the pure argmax sequence, which the ONNX and TorchScript loops reproduce exactly.
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=0)
    out = []
    with torch.no_grad():
        for ids in inputs:
            ids = ids.to(model.device)
            seq = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
            out.append(seq[0, ids.shape[1] :].tolist())
    return out


def close_check(name: str, value: float, tolerance: float, detail: str) -> VerificationCheck:
    """A check that passes when `value` <= `tolerance`."""
    return VerificationCheck(name=name, passed=value <= tolerance, value=value, tolerance=tolerance, detail=detail)


def same_tokens_check(name: str, expected: list[list[int]], got: list[list[int]], detail: str) -> VerificationCheck:
    """A check that passes when both token lists are identical; the value counts differing tokens."""
    wrong = sum(a != b for exp, act in zip(expected, got, strict=True) for a, b in zip(exp, act, strict=True))
    wrong += sum(abs(len(e) - len(g)) for e, g in zip(expected, got, strict=True))
    return VerificationCheck(name=name, passed=wrong == 0, value=float(wrong), tolerance=0.0, detail=detail)


def require_passed(checks: list[VerificationCheck]) -> None:
    """Raise ExportError naming every failed check: a failed export is never published."""
    failed = [f"{c.name}: {c.value} > {c.tolerance} ({c.detail})" for c in checks if not c.passed]
    if failed:
        raise ExportError("export verification failed: " + "; ".join(failed))


def calibration_texts(path: str | None) -> list[str]:
    """Passages separated by blank lines, from `path` or the built-in sample."""
    file = Path(path) if path else DEFAULT_CALIBRATION
    if not file.is_file():
        raise ExportError(f"export_quantization_dataset {path!r} not found")
    return [block.strip() for block in file.read_text().split("\n\n") if block.strip()]


def perplexity(model: Any, tokenizer: Any, texts: list[str]) -> tuple[float, int]:
    """Token-weighted perplexity over `texts` and the number of tokens scored."""
    import math

    import torch

    total_nll, total_tokens = 0.0, 0
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"].to(model.device)
            if ids.shape[1] < 2:
                continue
            n = ids.shape[1] - 1  # the loss averages over the shifted targets
            total_nll += float(model(input_ids=ids, labels=ids).loss) * n
            total_tokens += n
    return math.exp(total_nll / max(total_tokens, 1)), total_tokens
