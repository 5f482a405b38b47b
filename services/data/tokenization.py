"""Tokenize rendered text in batches and build labels, truncating only at turn boundaries.

The whole rendered text is tokenized at once (as `apply_chat_template` does), and each trained character
span is mapped to tokens through the tokenizer's own character-to-token alignment, so token ids always
equal `apply_chat_template`'s and no per-token Python loop runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.schemas.datasets import IGNORE_INDEX

from .converters import RecordError
from .rendering import Rendered


@dataclass
class Example:
    """One tokenized row."""

    input_ids: list[int]
    labels: list[int]
    truncated: bool = False


@dataclass(frozen=True)
class LabelOptions:
    """How labels and length limits are applied."""

    cutoff_len: int
    train_on_prompt: bool = False
    mask_history: bool = False
    overlong: str = "truncate"  # or "drop"


def encode_batch(tokenizer: Any, texts: list[str]) -> list[Any]:
    """Fast-tokenizer encodings (ids plus character alignment) for `texts`, without special tokens added."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError("the data service needs a fast (Rust-backed) tokenizer for character alignment")
    return backend.encode_batch(texts, add_special_tokens=False)


def token_spans(encoding: Any, rendered: Rendered) -> list[tuple[int, int]]:
    """Token index ranges of the rendered character spans."""
    n, size = len(encoding.ids), len(rendered.text)
    spans = []
    for start, end in rendered.spans:
        first = encoding.char_to_token(start) if start < size else None
        if first is None or start >= end:
            continue
        last = encoding.char_to_token(end) if end < size else n
        spans.append((first, n if last is None else last))
    return spans


def build_example(encoding: Any, rendered: Rendered, options: LabelOptions) -> list[Example]:
    """The training rows for one rendered record (several for long pre-training text), or RecordError.

    Args:
        encoding: The record's encoding from `encode_batch`.
        rendered: Its rendering (text and trained spans).
        options: Label and length options.
    """
    ids = encoding.ids
    cutoff = options.cutoff_len
    if rendered.train_all:  # pre-training: split long documents into cutoff-sized rows, nothing is lost
        return [Example(ids[i : i + cutoff], ids[i : i + cutoff]) for i in range(0, len(ids), cutoff)]
    spans = token_spans(encoding, rendered)
    truncated = False
    if len(ids) > cutoff:
        if options.overlong == "drop":
            raise RecordError("too_long", f"{len(ids)} tokens exceed cutoff_len {cutoff}")
        fitting = [span for span in spans if span[1] <= cutoff]
        if not fitting:
            first_end = spans[0][1] if spans else len(ids)
            raise RecordError(
                "too_long", f"the first response ends at token {first_end}, beyond cutoff_len {cutoff}; dropped"
            )
        ids, spans, truncated = ids[: fitting[-1][1]], fitting, True
    if options.train_on_prompt:
        labels = list(ids)
    else:
        labels = [IGNORE_INDEX] * len(ids)
        for first, last in spans[-1:] if options.mask_history else spans:
            labels[first:last] = ids[first:last]
    return [Example(list(ids), labels, truncated)]
