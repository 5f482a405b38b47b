"""Error analysis of one run: worst samples, score by reference length, empty and truncated outputs."""

from __future__ import annotations

from collections.abc import Sequence

from shared.schemas.evaluation import ErrorAnalysis, LengthBucket, SampleResult

# Per-sample scores in order of preference for ranking samples (all: higher is better).
PRIMARY_ORDER = ("rouge-l", "bleu", "chrf", "bleu-4", "normalized_match", "exact_match")
LENGTH_EDGES = (0, 50, 100, 200, 500, 1000)  # reference characters; the last bucket is open-ended


def primary_metric(samples: Sequence[SampleResult]) -> str | None:
    """The first of PRIMARY_ORDER every sample has a score for."""
    return next((m for m in PRIMARY_ORDER if samples and all(m in s.scores for s in samples)), None)


def _bucket(length: int) -> str:
    upper = next((e for e in LENGTH_EDGES[1:] if length < e), None)
    lower = max(e for e in LENGTH_EDGES if e <= length)
    return f"{lower}-{upper}" if upper is not None else f"{lower}+"


def analyse(samples: Sequence[SampleResult], *, worst_n: int = 5) -> ErrorAnalysis:
    """Summarise where the model fails; samples are ranked by `primary_metric` when there is one."""
    metric = primary_metric(samples)
    worst: list[SampleResult] = []
    buckets: dict[str, list[float]] = {}
    if metric is not None:
        worst = sorted(samples, key=lambda s: (s.scores[metric], s.index))[:worst_n]
        for sample in samples:
            buckets.setdefault(_bucket(len(sample.reference)), []).append(sample.scores[metric])
    order = {_bucket(e): i for i, e in enumerate(LENGTH_EDGES)}
    return ErrorAnalysis(
        primary_metric=metric or "",
        worst=worst,
        by_length=[
            LengthBucket(range=name, count=len(values), mean_score=sum(values) / len(values))
            for name, values in sorted(buckets.items(), key=lambda kv: order[kv[0]])
        ],
        empty_indices=[s.index for s in samples if not s.prediction.strip()],
        truncated_indices=[s.index for s in samples if s.truncated],
    )
