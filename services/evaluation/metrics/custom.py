"""User metrics: a function `(predictions, references) -> dict[str, float]` named by entry point or dotted path."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from numbers import Real
from typing import Any

ENTRY_POINT_GROUP = "tuneflow.metrics"  # packages register `name = "pkg.module:function"` here

CustomMetric = Callable[[list[str], list[str]], dict[str, float]]


class CustomMetricError(ValueError):
    """A custom metric cannot be found, or returned something other than named numbers."""


def resolve_metric(ref: str) -> CustomMetric:
    """The function `ref` names: `module:function`, or an entry point of group `tuneflow.metrics`."""
    if ":" in ref:
        module_name, _, attr = ref.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise CustomMetricError(f"custom metric {ref!r}: cannot import module {module_name!r} ({exc})") from exc
        fn = getattr(module, attr, None)
        if fn is None:
            raise CustomMetricError(f"custom metric {ref!r}: module {module_name!r} has no attribute {attr!r}")
    else:
        matches = entry_points(group=ENTRY_POINT_GROUP, name=ref)
        if not matches:
            known = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
            raise CustomMetricError(
                f"custom metric {ref!r}: no entry point of that name in group {ENTRY_POINT_GROUP!r} "
                f"(registered: {known}); or give a `module:function` path"
            )
        fn = next(iter(matches)).load()
    if not callable(fn):
        raise CustomMetricError(f"custom metric {ref!r} is a {type(fn).__name__}, not a function")
    return fn


def _check_scores(ref: str, result: Any) -> dict[str, float]:
    if not isinstance(result, dict):
        raise CustomMetricError(f"custom metric {ref!r} returned {type(result).__name__}; expected dict[str, float]")
    scores = {}
    for key, value in result.items():
        if not isinstance(key, str) or not key:
            raise CustomMetricError(f"custom metric {ref!r} returned key {key!r}; keys must be non-empty strings")
        # bool is a Real in Python, but True as a score is almost always a bug in the metric.
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
            raise CustomMetricError(f"custom metric {ref!r} returned {key}={value!r}; values must be finite numbers")
        scores[key] = float(value)
    return scores


def run_custom_metric(ref: str, predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Resolve `ref`, call it on copies of the lists, and check it returned named finite numbers."""
    fn = resolve_metric(ref)
    return _check_scores(ref, fn(list(predictions), list(references)))
