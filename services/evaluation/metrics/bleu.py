"""BLEU and chrF through sacrebleu, and LLaMA-Factory's character-level BLEU-4 through nltk."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import sacrebleu

from ._types import MetricOutput


def bleu_tokenizer(language: str) -> str:
    """sacrebleu's tokenizer for a language: `zh` splits Chinese into characters, `13a` is its default."""
    return "zh" if language == "zh" else "13a"


def corpus_bleu(predictions: Sequence[str], references: Sequence[str], *, language: str) -> MetricOutput:
    """Corpus BLEU (0-100) as sacrebleu computes it; per-sample values are sacrebleu's sentence BLEU."""
    tokenize = bleu_tokenizer(language)
    score = sacrebleu.corpus_bleu(list(predictions), [list(references)], tokenize=tokenize).score
    per_sample = [
        {"bleu": sacrebleu.sentence_bleu(p, [r], tokenize=tokenize).score}
        for p, r in zip(predictions, references, strict=True)
    ]
    return MetricOutput({"bleu": score}, per_sample)


def corpus_chrf(predictions: Sequence[str], references: Sequence[str], *, language: str) -> MetricOutput:
    """Corpus chrF (0-100); character n-grams need no language-specific tokenizer."""
    score = sacrebleu.corpus_chrf(list(predictions), [list(references)]).score
    per_sample = [{"chrf": sacrebleu.sentence_chrf(p, [r]).score} for p, r in zip(predictions, references, strict=True)]
    return MetricOutput({"chrf": score}, per_sample)


def llamafactory_bleu4(predictions: Sequence[str], references: Sequence[str], *, language: str) -> MetricOutput:
    """Mean character-level sentence BLEU-4 (0-100), smoothing method 3, as LLaMA-Factory's `predict_bleu-4`.

    Characters, not words, are the units in both languages, exactly as their ComputeSimilarity does;
    `language` is accepted for a uniform signature only.
    """
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    smoothing = SmoothingFunction().method3
    per_sample = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nltk warns on every empty or very short hypothesis
        for prediction, reference in zip(predictions, references, strict=True):
            score = sentence_bleu([list(reference)], list(prediction), smoothing_function=smoothing)
            per_sample.append({"bleu-4": round(score * 100, 4)})
    mean = sum(s["bleu-4"] for s in per_sample) / len(per_sample) if per_sample else 0.0
    return MetricOutput({"bleu-4": mean}, per_sample)
