"""Generate alpaca-style JSONL of a given size for the data-preparation benchmark (seeded, unique records)."""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = [
    "model",
    "data",
    "token",
    "train",
    "learn",
    "layer",
    "weight",
    "batch",
    "loss",
    "graph",
    "vector",
    "matrix",
    "answer",
    "question",
    "explain",
    "describe",
    "summarise",
    "translate",
    "list",
    "compare",
    "write",
    "story",
    "poem",
    "code",
    "function",
    "python",
    "error",
    "memory",
    "speed",
    "river",
    "mountain",
    "city",
    "history",
    "science",
    "music",
    "market",
    "energy",
    "health",
    "garden",
    "ocean",
    "planet",
    "language",
    "number",
]


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def generate_alpaca_jsonl(path: Path, size_bytes: int, seed: int = 0) -> int:
    """Write records until the file reaches `size_bytes`; return how many were written."""
    rng = random.Random(seed)
    written = count = 0
    with open(path, "w", encoding="utf-8") as fh:
        while written < size_bytes:
            record = {
                "instruction": f"Task {count}: " + _sentence(rng, rng.randint(6, 14)),
                "input": _sentence(rng, rng.randint(4, 10)) if rng.random() < 0.4 else "",
                "output": " ".join(_sentence(rng, rng.randint(8, 16)) for _ in range(rng.randint(2, 5))),
            }
            line = json.dumps(record) + "\n"
            fh.write(line)
            written += len(line)
            count += 1
    return count


def head_jsonl(source: Path, target: Path, records: int) -> int:
    """Copy the first `records` lines of `source` to `target`; return the bytes copied."""
    size = 0
    with open(source, encoding="utf-8") as src, open(target, "w", encoding="utf-8") as dst:
        for _, line in zip(range(records), src, strict=False):
            dst.write(line)
            size += len(line.encode())
    return size
