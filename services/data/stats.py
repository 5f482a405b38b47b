"""Summary statistics of canonical records: kinds, turns, scripts, duplicates, character and token lengths."""

from __future__ import annotations

import hashlib
import json
import re
from array import array
from collections import Counter
from typing import Any

from shared.schemas.datasets import DatasetStats, LengthStats

from .cleaning import text_fields
from .converters import Record

LANGUAGE_SAMPLE_CHARS = 2000
# Character classes of the scripts worth telling apart; Latin covers English and most European languages.
SCRIPTS = {
    "han": re.compile("[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff]"),
    "kana": re.compile("[\u3040-\u30ff]"),
    "hangul": re.compile("[\uac00-\ud7af\u1100-\u11ff]"),
    "cyrillic": re.compile("[\u0400-\u04ff]"),
    "arabic": re.compile("[\u0600-\u06ff]"),
    "devanagari": re.compile("[\u0900-\u097f]"),
    "latin": re.compile("[A-Za-z\u00c0-\u024f]"),
}


def dominant_script(text: str) -> str:
    """The script most letters of `text` belong to (`kana` wins over `han`: Japanese mixes both)."""
    sample = text[:LANGUAGE_SAMPLE_CHARS]
    counts = {name: len(pattern.findall(sample)) for name, pattern in SCRIPTS.items()}
    if counts["kana"]:
        return "kana"
    name, count = max(counts.items(), key=lambda kv: kv[1])
    return name if count else "unknown"


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
