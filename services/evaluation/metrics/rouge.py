"""ROUGE-1/2/L F1 through rouge-score, segmenting Chinese with jieba (its default tokenizer drops non-ASCII)."""

from __future__ import annotations

from collections.abc import Sequence

from rouge_score import rouge_scorer

from ._types import MetricOutput
from .text import JiebaTokenizer

_TYPES = {"rouge1": "rouge-1", "rouge2": "rouge-2", "rougeL": "rouge-l"}


def rouge(predictions: Sequence[str], references: Sequence[str], *, language: str) -> MetricOutput:
    """Mean per-sample ROUGE F1 (0-1): rouge-score has no corpus form, and the mean is how it is reported."""
    tokenizer = JiebaTokenizer() if language == "zh" else None
    scorer = rouge_scorer.RougeScorer(list(_TYPES), tokenizer=tokenizer)
    per_sample = []
    for prediction, reference in zip(predictions, references, strict=True):
        scores = scorer.score(reference, prediction)  # rouge-score takes (target, prediction)
        per_sample.append({name: scores[key].fmeasure for key, name in _TYPES.items()})
    n = len(per_sample)
    aggregate = {name: (sum(s[name] for s in per_sample) / n if n else 0.0) for name in _TYPES.values()}
    return MetricOutput(aggregate, per_sample)
