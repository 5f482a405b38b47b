"""Batched, deterministic-by-default generation: the same prompts and settings for every evaluated model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class GenerationSettings:
    """Decoding knobs; the defaults make greedy, reproducible output."""

    max_new_tokens: int = 128
    batch_size: int = 8
    cutoff_len: int = 1024  # longer prompts keep their end: the question is usually last
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 42
    stop_words: Sequence[str] = ()


@dataclass
class Generation:
    """One model output."""

    text: str
    tokens: int
    truncated: bool  # stopped by max_new_tokens, not by end-of-turn or a stop word


def cut_at_stop_words(text: str, stop_words: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the earliest stop word, and whether one was found."""
    cut = min((i for i in (text.find(w) for w in stop_words if w) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def generate(model: Any, tokenizer: Any, prompts: Sequence[str], settings: GenerationSettings) -> list[Generation]:
    """Continue each prompt; prompts are batched by length with left padding, results come back in input order."""
    import torch
    from transformers import set_seed

    tokenizer.padding_side = "left"  # decoder-only models must see the prompt end right before new tokens
    tokenizer.truncation_side = "left"
    eos_ids = set(_eos_ids(model, tokenizer))
    encoded = [tokenizer(p, add_special_tokens=False, truncation=True, max_length=settings.cutoff_len) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]["input_ids"]), reverse=True)
    results: list[Generation | None] = [None] * len(prompts)
    device = next(model.parameters()).device
    set_seed(settings.seed)
    for start in range(0, len(order), settings.batch_size):
        indices = order[start : start + settings.batch_size]
        batch = tokenizer.pad([encoded[i] for i in indices], return_tensors="pt").to(device)
        with torch.inference_mode():
            output = model.generate(
                **batch,
                max_new_tokens=settings.max_new_tokens,
                do_sample=settings.do_sample,
                temperature=settings.temperature if settings.do_sample else None,
                top_p=settings.top_p if settings.do_sample else None,
                top_k=None,
                stop_strings=list(settings.stop_words) or None,
                tokenizer=tokenizer if settings.stop_words else None,
                pad_token_id=tokenizer.pad_token_id,
            )
        new_tokens = output[:, batch["input_ids"].shape[1] :].tolist()
        for index, tokens in zip(indices, new_tokens, strict=True):
            results[index] = _finish(tokens, tokenizer, eos_ids, settings)
    return [r for r in results if r is not None]


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    configured = model.generation_config.eos_token_id
    ids = configured if isinstance(configured, list) else [configured]
    return [i for i in [*ids, tokenizer.eos_token_id] if i is not None]


def _finish(tokens: list[int], tokenizer: Any, eos_ids: set[int], settings: GenerationSettings) -> Generation:
    end = next((i for i, t in enumerate(tokens) if t in eos_ids), None)
    # Padding after an early finish is not output; neither is the end-of-turn token itself.
    kept = tokens[:end] if end is not None else [t for t in tokens if t != tokenizer.pad_token_id]
    text, stopped = cut_at_stop_words(tokenizer.decode(kept, skip_special_tokens=True), settings.stop_words)
    truncated = end is None and not stopped and len(kept) >= settings.max_new_tokens
    return Generation(text.strip(), len(kept), truncated)
