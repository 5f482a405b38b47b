"""Text metrics over (prediction, reference) pairs, plus the custom-metric plug-in point.

Model-based metrics (perplexity, multiple-choice accuracy) need a model and live in their own modules.
"""

from ._types import MetricFn, MetricOutput
from .accuracy import exact_match, normalized_match
from .bleu import corpus_bleu, corpus_chrf, llamafactory_bleu4
from .rouge import rouge
from .text import detect_language

# Built-in generation metrics by config name; each returns aggregate and per-sample scores.
TEXT_METRICS: dict[str, MetricFn] = {
    "bleu": corpus_bleu,
    "chrf": corpus_chrf,
    "bleu-4": llamafactory_bleu4,
    "rouge": rouge,
    "exact_match": exact_match,
    "normalized_match": normalized_match,
}

__all__ = [
    "TEXT_METRICS",
    "MetricFn",
    "MetricOutput",
    "corpus_bleu",
    "corpus_chrf",
    "detect_language",
    "exact_match",
    "llamafactory_bleu4",
    "normalized_match",
    "rouge",
]
