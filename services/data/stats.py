"""Summary statistics of canonical records: kinds, turns, scripts, duplicates, character and token lengths."""

from __future__ import annotations

import hashlib
import json
from array import array
from collections import Counter
from typing import Any

from shared.schemas.datasets import DatasetStats, LengthStats

from .cleaning import text_fields
from .converters import Record

LANGUAGE_SAMPLE_CHARS = 2000
# Code-point ranges of the scripts worth telling apart; Latin covers English and most European languages.
SCRIPTS = [
    ("han", ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF))),
    ("kana", ((0x3040, 0x30FF),)),
    ("hangul", ((0xAC00, 0xD7AF), (0x1100, 0x11FF))),
    ("cyrillic", ((0x0400, 0x04FF),)),
    ("arabic", ((0x0600, 0x06FF),)),
    ("devanagari", ((0x0900, 0x097F),)),
    ("latin", ((0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F))),
]


def dominant_script(text: str) -> str:
    """The script most letters of `text` belong to (`kana` wins over `han`: Japanese mixes both)."""
    counts: Counter[str] = Counter()
    for ch in text[:LANGUAGE_SAMPLE_CHARS]:
        code = ord(ch)
        for name, ranges in SCRIPTS:
            if any(lo <= code <= hi for lo, hi in ranges):
                counts[name] += 1
                break
    if not counts:
        return "unknown"
    if counts["kana"]:
        return "kana"
    return counts.most_common(1)[0][0]


def length_stats(lengths: array) -> LengthStats:
    """Distribution of `lengths`, with power-of-two buckets."""
    if not lengths:
        return LengthStats()
    ordered = sorted(lengths)
    buckets: Counter[int] = Counter(max(length, 1).bit_length() for length in ordered)
    histogram = {f"{(1 << b) >> 1}-{(1 << b) - 1}": buckets[b] for b in sorted(buckets)}
    return LengthStats(
        count=len(ordered),
        min=ordered[0],
        max=ordered[-1],
        mean=round(sum(ordered) / len(ordered), 2),
        p50=ordered[len(ordered) // 2],
        p95=ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
        histogram=histogram,
    )


class StatsCollector:
    """Accumulates statistics one record at a time (lengths as 4-byte integers, so millions fit)."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.turns: Counter[str] = Counter()
        self.languages: Counter[str] = Counter()
        self.with_tools = 0
        self.duplicates = 0
        self.seen: set[int] = set()
        self.chars = array("I")
        self.tokens = array("I")

    def add(self, record: Record) -> None:
        """Count one valid record."""
        kind = "text" if "text" in record else "preference" if "chosen" in record else "conversation"
        self.kinds[kind] += 1
        texts = [holder[key] for holder, key in text_fields(record)]
        self.chars.append(sum(map(len, texts)))
        self.languages[dominant_script(" ".join(texts))] += 1
        if "messages" in record:
            self.turns[str(sum(m["role"] == "user" for m in record["messages"]))] += 1
            if record.get("tools") or any(m.get("tool_calls") for m in record["messages"]):
                self.with_tools += 1
        digest = int.from_bytes(hashlib.blake2b(json.dumps(record, sort_keys=True).encode(), digest_size=8).digest())
        if digest in self.seen:
            self.duplicates += 1
        self.seen.add(digest)

    def add_token_lengths(self, lengths: list[int]) -> None:
        """Record rendered token lengths."""
        self.tokens.extend(lengths)

    def result(self) -> DatasetStats:
        """The statistics so far."""
        as_dict: dict[str, Any] = {
            "records": sum(self.kinds.values()),
            "kinds": dict(self.kinds),
            "turns": dict(sorted(self.turns.items(), key=lambda kv: int(kv[0]))),
            "with_tools": self.with_tools,
            "languages": dict(self.languages.most_common()),
            "duplicates": self.duplicates,
            "chars": length_stats(self.chars),
            "tokens": length_stats(self.tokens) if self.tokens else None,
        }
        return DatasetStats(**as_dict)
