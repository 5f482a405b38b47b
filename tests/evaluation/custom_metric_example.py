"""Custom metrics a user could register, used by the tests through `module:function` paths."""

from __future__ import annotations


def length_ratio(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Total prediction length over total reference length."""
    return {"length_ratio": sum(map(len, predictions)) / max(1, sum(map(len, references)))}


def returns_list(predictions: list[str], references: list[str]) -> list[float]:
    """Wrong: a list instead of named scores."""
    return [1.0]


def returns_text(predictions: list[str], references: list[str]) -> dict[str, object]:
    """Wrong: a value that is not a number."""
    return {"score": "high"}


NOT_A_FUNCTION = 3
