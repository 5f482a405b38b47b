"""Combine several datasets (concatenate or interleave by probability) and balance one by a label column."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path


def balanced_keep(labels: list[str], seed: int) -> set[int]:
    """Indices to keep so every label has as many records as the rarest one (seeded random choice).

    Args:
        labels: The label of each record, in order.
        seed: Makes the choice reproducible.
    """
    by_label: dict[str, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_label[label].append(index)
    if not by_label:
        return set()
    smallest = min(len(indices) for indices in by_label.values())
    rng = random.Random(seed)
    return {i for label in sorted(by_label) for i in rng.sample(by_label[label], smallest)}


def read_lines(path: str, keep: set[int] | None = None) -> Iterator[dict[str, str]]:
    """Lines of a JSONL file as `{"line": ...}` rows, optionally only those whose index is in `keep`."""
    with open(path, encoding="utf-8") as fh:
        for index, line in enumerate(fh):
            if keep is None or index in keep:
                yield {"line": line}


def mix_lines(
    paths: list[Path],
    keeps: list[set[int] | None],
    strategy: str,
    probabilities: list[float] | None,
    seed: int,
) -> Iterator[str]:
    """Yield the JSONL lines of several datasets combined by `strategy`.

    Args:
        paths: One JSONL file per dataset.
        keeps: Per dataset, the line indices to keep (None: all).
        strategy: `concat`; `interleave_under` stops when the first dataset runs out; `interleave_over`
            repeats the smaller ones until every dataset has been seen in full.
        probabilities: Sampling probability per dataset (None: equal).
        seed: Seed for interleaving.
    """
    if strategy == "concat" or len(paths) == 1:
        for row in itertools.chain.from_iterable(read_lines(str(p), k) for p, k in zip(paths, keeps, strict=True)):
            yield row["line"]
        return
    from datasets import IterableDataset, interleave_datasets

    sources = [
        IterableDataset.from_generator(read_lines, gen_kwargs={"path": str(p), "keep": k})
        for p, k in zip(paths, keeps, strict=True)
    ]
    stopping = "first_exhausted" if strategy == "interleave_under" else "all_exhausted"
    mixed = interleave_datasets(sources, probabilities=probabilities, seed=seed, stopping_strategy=stopping)
    for row in mixed:
        yield row["line"]
