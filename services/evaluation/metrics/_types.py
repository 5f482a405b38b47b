"""The shape every built-in text metric returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class MetricOutput:
    """Aggregate scores plus one score dict per sample (same keys, or a subset)."""

    aggregate: dict[str, float]
    per_sample: list[dict[str, float]] = field(default_factory=list)


class MetricFn(Protocol):
    """A built-in metric: predictions and references in, scores out. `language` is `en` or `zh`."""

    def __call__(self, predictions: Sequence[str], references: Sequence[str], *, language: str) -> MetricOutput: ...
