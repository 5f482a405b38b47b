"""Exact and normalised match of generated answers."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from ._types import MetricOutput

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str, language: str) -> str:
    """SQuAD-style normalisation: NFKC, lower case, no punctuation, no English articles, single spaces.

    Chinese has no word spaces, so all whitespace is dropped there.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return "".join(text.split()) if language == "zh" else " ".join(text.split())


def _match_rate(name: str, matches: list[bool]) -> MetricOutput:
    per_sample = [{name: float(m)} for m in matches]
    return MetricOutput({name: sum(matches) / len(matches) if matches else 0.0}, per_sample)


def exact_match(predictions: Sequence[str], references: Sequence[str], *, language: str) -> MetricOutput:
    """Share of predictions equal to their reference after stripping surrounding whitespace."""
    return _match_rate("exact_match", [p.strip() == r.strip() for p, r in zip(predictions, references, strict=True)])


def normalized_match(predictions: Sequence[str], references: Sequence[str], *, language: str) -> MetricOutput:
    """Share of predictions equal to their reference after `normalize_answer`."""
    matches = [
        normalize_answer(p, language) == normalize_answer(r, language)
        for p, r in zip(predictions, references, strict=True)
    ]
    return _match_rate("normalized_match", matches)
