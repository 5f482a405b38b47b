"""Inter-reviewer agreement: Krippendorff's alpha for interval data (1-5 ratings, any number of reviewers)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import permutations


def krippendorff_alpha_interval(units: Sequence[Sequence[float]]) -> float | None:
    """Alpha = 1 - observed / expected disagreement, squared differences as the distance.

    Args:
        units: For each rated thing, the values reviewers gave it; missing ratings are simply absent.
            Units with fewer than two values cannot be paired and are left out, as the method prescribes.

    Returns:
        Alpha (1: perfect agreement, 0: chance level), or None when it is undefined: fewer than two
        pairable values, or no variation at all among them.
    """
    pairable = [list(u) for u in units if len(u) >= 2]
    values = [v for u in pairable for v in u]
    n = len(values)
    if n < 2:
        return None
    observed = sum(sum((a - b) ** 2 for a, b in permutations(u, 2)) / (len(u) - 1) for u in pairable) / n
    expected = sum((a - b) ** 2 for a, b in permutations(values, 2)) / (n * (n - 1))
    if expected == 0:
        return None
    return 1 - observed / expected
