"""Error analysis and comparison on hand-made results (no model)."""

from __future__ import annotations

import pytest

from services.evaluation.analysis import analyse
from services.evaluation.comparison import compare
from shared.schemas.evaluation import EvalResults, SampleResult


def _sample(index: int, reference: str, prediction: str, score: float, truncated: bool = False) -> SampleResult:
    return SampleResult(
        index=index,
        prompt=f"p{index}",
        reference=reference,
        prediction=prediction,
        scores={"rouge-l": score, "bleu": score * 100},
        truncated=truncated,
    )


SAMPLES = [
    _sample(0, "short", "short", 1.0),
    _sample(1, "x" * 60, "", 0.0),
    _sample(2, "y" * 70, "y" * 10, 0.2, truncated=True),
    _sample(3, "z" * 600, "z" * 600, 0.9),
]


def test_analysis_ranks_worst_and_buckets_by_length() -> None:
    analysis = analyse(SAMPLES, worst_n=2)
    assert analysis.primary_metric == "rouge-l"
    assert [s.index for s in analysis.worst] == [1, 2]
    assert [(b.range, b.count) for b in analysis.by_length] == [("0-50", 1), ("50-100", 2), ("500-1000", 1)]
    assert analysis.by_length[1].mean_score == pytest.approx(0.1)
    assert analysis.empty_indices == [1] and analysis.truncated_indices == [2]


def test_comparison_needs_the_same_prompts() -> None:
    base = (EvalResults(job_id="j1", model="m", metrics={"rouge-l": 0.5}, num_samples=4), SAMPLES)
    other = [s.model_copy(update={"scores": {"rouge-l": 1.0, "bleu": 100.0}}) for s in SAMPLES]
    tuned = (EvalResults(job_id="j2", model="m", metrics={"rouge-l": 1.0}, num_samples=4), other)
    comparison = compare([base, tuned])
    assert comparison.models == ["m (j1)", "m (j2)"]  # same label twice: job ids keep them apart
    assert comparison.deltas["rouge-l"]["m (j2)"] == pytest.approx(0.5)
    assert comparison.wins["m (j2)"] == {"better": 3, "same": 1, "worse": 0}
    moved = (tuned[0], [s.model_copy(update={"prompt": "changed"}) for s in other])
    with pytest.raises(ValueError, match="not evaluated on the same prompts"):
        compare([base, moved])
