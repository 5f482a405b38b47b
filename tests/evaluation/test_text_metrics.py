"""Text metrics equal the libraries' own calls on fixed English and Chinese inputs."""

from __future__ import annotations

import math

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from services.evaluation.metrics import (
    corpus_bleu,
    corpus_chrf,
    detect_language,
    exact_match,
    llamafactory_bleu4,
    normalized_match,
    rouge,
)
from services.evaluation.metrics.text import JiebaTokenizer

EN_REFS = ["The cat sat on the mat.", "A quick brown fox jumps over the lazy dog.", "Paris is the capital of France."]
EN_PREDS = ["The cat is on the mat.", "A fast brown fox jumped over a lazy dog.", "The capital of France is Paris."]
ZH_REFS = ["细胞理论是生物科学的一个理论。", "日心说是指太阳是太阳系的中心。", "今天天气很好，我们去公园散步吧。"]
ZH_PREDS = ["细胞理论是生物学的基础理论。", "日心说认为太阳是宇宙的中心。", "今天天气不错，我们去公园走走。"]


def test_language_detection() -> None:
    assert detect_language(EN_REFS) == "en"
    assert detect_language(ZH_REFS) == "zh"
    assert detect_language(["用 Python 写一个函数来计算斐波那契数列"]) == "zh"


@pytest.mark.parametrize(("preds", "refs", "tokenize"), [(EN_PREDS, EN_REFS, "13a"), (ZH_PREDS, ZH_REFS, "zh")])
def test_bleu_and_chrf_equal_sacrebleu(preds: list[str], refs: list[str], tokenize: str) -> None:
    language = detect_language(refs)
    bleu = corpus_bleu(preds, refs, language=language)
    assert bleu.aggregate["bleu"] == pytest.approx(sacrebleu.corpus_bleu(preds, [refs], tokenize=tokenize).score)
    for p, r, s in zip(preds, refs, bleu.per_sample, strict=True):
        assert s["bleu"] == pytest.approx(sacrebleu.sentence_bleu(p, [r], tokenize=tokenize).score)
    chrf = corpus_chrf(preds, refs, language=language)
    assert chrf.aggregate["chrf"] == pytest.approx(sacrebleu.corpus_chrf(preds, [refs]).score)
    assert 0 < bleu.aggregate["bleu"] < 100


def test_rouge_equals_rouge_score_english() -> None:
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    expected = [scorer.score(r, p) for p, r in zip(EN_PREDS, EN_REFS, strict=True)]
    got = rouge(EN_PREDS, EN_REFS, language="en")
    for ours, theirs in zip(got.per_sample, expected, strict=True):
        assert ours == pytest.approx(
            {
                "rouge-1": theirs["rouge1"].fmeasure,
                "rouge-2": theirs["rouge2"].fmeasure,
                "rouge-l": theirs["rougeL"].fmeasure,
            }
        )
    assert got.aggregate["rouge-l"] == pytest.approx(sum(e["rougeL"].fmeasure for e in expected) / 3)


def test_rouge_chinese_uses_jieba_words() -> None:
    import jieba

    class Words:
        def tokenize(self, text: str) -> list[str]:
            return [w.lower() for w in jieba.cut(text) if w.strip()]

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=Words())
    expected = [scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(ZH_PREDS, ZH_REFS, strict=True)]
    got = rouge(ZH_PREDS, ZH_REFS, language="zh")
    assert [s["rouge-l"] for s in got.per_sample] == pytest.approx(expected)
    assert 0 < got.aggregate["rouge-l"] < 1
    # rouge-score's own tokenizer keeps only [a-z0-9]: Chinese would silently score 0 without jieba.
    assert rouge_scorer.RougeScorer(["rougeL"]).score(ZH_REFS[0], ZH_REFS[0])["rougeL"].fmeasure == 0
    assert JiebaTokenizer().tokenize("我爱北京天安门") == ["我", "爱", "北京", "天安门"]


@pytest.mark.parametrize("refs", [EN_REFS, ZH_REFS])
def test_identical_prediction_scores_perfectly(refs: list[str]) -> None:
    language = detect_language(refs)
    assert corpus_bleu(refs, refs, language=language).aggregate["bleu"] == pytest.approx(100)
    assert rouge(refs, refs, language=language).aggregate["rouge-l"] == pytest.approx(1.0)
    assert llamafactory_bleu4(refs, refs, language=language).aggregate["bleu-4"] == pytest.approx(100)
    assert exact_match(refs, refs, language=language).aggregate["exact_match"] == 1.0


def _method3_bleu4(hyp: list[str], ref: list[str]) -> float:
    """LLaMA-Factory's formula written out: NIST geometric smoothing (method 3) of 1-4-gram precisions."""
    from collections import Counter

    logs, k = [], 1
    for n in range(1, 5):
        hyp_ngrams = Counter(tuple(hyp[i : i + n]) for i in range(len(hyp) - n + 1))
        ref_ngrams = Counter(tuple(ref[i : i + n]) for i in range(len(ref) - n + 1))
        total = max(1, sum(hyp_ngrams.values()))
        matches = sum(min(c, ref_ngrams[g]) for g, c in hyp_ngrams.items())
        if matches == 0:  # method 3: replace a zero count by 1 / 2^k, k counting the zero precisions so far
            k *= 2
            logs.append(math.log(1 / (k * total)))
        else:
            logs.append(math.log(matches / total))
    bp = 1.0 if len(hyp) > len(ref) else math.exp(1 - len(ref) / len(hyp))
    return bp * math.exp(sum(logs) / 4) * 100


def test_llamafactory_bleu4_matches_its_formula() -> None:
    got = llamafactory_bleu4(ZH_PREDS + EN_PREDS, ZH_REFS + EN_REFS, language="zh")
    expected = [
        round(_method3_bleu4(list(p), list(r)), 4) for p, r in zip(ZH_PREDS + EN_PREDS, ZH_REFS + EN_REFS, strict=True)
    ]
    assert [s["bleu-4"] for s in got.per_sample] == pytest.approx(expected, abs=1e-4)
    assert got.aggregate["bleu-4"] == pytest.approx(sum(expected) / len(expected))


def test_exact_and_normalized_match() -> None:
    preds = ["Paris", "the answer is 42.", "  北京 ", "A"]
    refs = ["Paris ", "Answer is 42", "北京。", "B"]
    assert exact_match(preds, refs, language="en").aggregate["exact_match"] == pytest.approx(1 / 4)
    got = normalized_match(preds, refs, language="en")
    assert [s["normalized_match"] for s in got.per_sample] == [1.0, 1.0, 1.0, 0.0]
