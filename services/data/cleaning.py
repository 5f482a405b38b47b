"""Cleaning steps over canonical records; each counts what it changed and reports what it removed."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterator
from typing import Any, Literal

from shared.schemas.datasets import CleaningConfig

from .converters import Record
from .readers import Location
from .validation import ReportBuilder

_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_BLANK_LINES = re.compile(r"\n{3,}")
EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
# National ID shapes: US SSN, Chinese resident ID (18 chars), and long card-like digit runs.
ID_NUMBER = re.compile(r"\b\d{3}-\d{2}-\d{4}\b|\b\d{17}[\dXx]\b|\b(?:\d[ -]?){13,16}\b")
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]?\d{3,4}\b")
NEAR_DUP_SHINGLE = 5  # characters: works for scripts without spaces (Chinese) as well as for English
NEAR_DUP_PERMUTATIONS = 128


def text_fields(record: Record) -> Iterator[tuple[dict[str, Any], str]]:
    """Every (holder, key) of a free-text field in `record`, so steps can read and rewrite them."""
    if "text" in record:
        yield record, "text"
    for message in record.get("messages", []):
        yield message, "content"
    for key in ("chosen", "rejected"):
        if key in record:
            yield record[key], "content"


def response_text(record: Record) -> str:
    """The part a too-short check looks at: the last response, or the document."""
    if "text" in record:
        return record["text"]
    if "chosen" in record:
        return record["chosen"]["content"]
    last = record["messages"][-1]
    return last["content"] or json.dumps(last.get("tool_calls") or "")


def normalize_text(text: str, form: Literal["NFC", "NFKC"] | None, strip: bool) -> str:
    """Unicode-normalise and tidy whitespace; indentation inside lines is kept (code depends on it)."""
    if form:
        text = unicodedata.normalize(form, text)
    if strip:
        text = _BLANK_LINES.sub("\n\n", _TRAILING_SPACE.sub("\n", text)).strip()
    return text


def mask_pii(text: str) -> str:
    """Replace e-mail addresses, ID numbers and phone numbers by `<EMAIL>`, `<ID>`, `<PHONE>`."""
    text = EMAIL.sub("<EMAIL>", text)
    text = ID_NUMBER.sub("<ID>", text)
    return PHONE.sub("<PHONE>", text)


class Cleaner:
    """Applies the configured steps to a stream of records, remembering what it has seen for deduplication."""

    def __init__(self, config: CleaningConfig, builder: ReportBuilder):
        self.config = config
        self.builder = builder
        # digest -> packed (file number, line or index): ~100 bytes a record, so millions of records fit.
        self.seen: dict[int, int] = {}
        self.files: list[str] = []
        self.lsh: Any = None
        self.lsh_locations: dict[str, int] = {}
        if config.dedup == "near":
            from datasketch import MinHashLSH

            self.lsh = MinHashLSH(threshold=config.near_dup_threshold, num_perm=NEAR_DUP_PERMUTATIONS)

    def clean(self, records: Iterator[tuple[Location, Record]]) -> Iterator[tuple[Location, Record]]:
        """Yield the records that survive, rewritten by the text steps."""
        for loc, record in records:
            self._rewrite(record)
            if not self._removed(loc, record):
                yield loc, record

    def _rewrite(self, record: Record) -> None:
        cfg = self.config
        changed = masked = False
        for holder, key in text_fields(record):
            old = holder[key]
            new = normalize_text(old, cfg.unicode_form, cfg.strip_whitespace)
            changed |= new != old
            if cfg.mask_pii:
                hidden = mask_pii(new)
                masked |= hidden != new
                new = hidden
            holder[key] = new
        if changed:
            self.builder.count("normalized")
        if masked:
            self.builder.count("pii_masked")

    def _removed(self, loc: Location, record: Record) -> bool:
        cfg = self.config
        if "messages" in record and any(
            m["role"] in ("user", "assistant") and not m["content"] and not m.get("tool_calls")
            for m in record["messages"]
        ):
            return self._drop(loc, "empty_after_cleaning", "a message is empty after cleaning")
        if len(response_text(record)) < cfg.min_chars:
            return self._drop(loc, "too_short", f"the response is shorter than min_chars={cfg.min_chars}")
        if cfg.max_chars is not None:
            size = sum(len(holder[key]) for holder, key in text_fields(record))
            if size > cfg.max_chars:
                return self._drop(loc, "too_long_chars", f"{size} characters exceed max_chars={cfg.max_chars}")
        if cfg.dedup == "none":
            return False
        canonical = json.dumps(record, sort_keys=True, ensure_ascii=False)
        digest = int.from_bytes(hashlib.blake2b(canonical.encode(), digest_size=8).digest())
        first = self.seen.get(digest)
        if first is not None:
            return self._drop(loc, "exact_duplicate", f"duplicates the record at {self._unpack(first)}")
        self.seen[digest] = self._pack(loc)
        if self.lsh is not None:
            return self._near_duplicate(loc, record, f"{digest:016x}")
        return False

    def _pack(self, loc: Location) -> int:
        if not self.files or self.files[-1] != loc.file:
            self.files.append(loc.file)
        position = loc.line if loc.line is not None else loc.index
        return (len(self.files) - 1) << 40 | (position or 0) << 1 | (loc.line is not None)

    def _unpack(self, packed: int) -> str:
        file, position, is_line = self.files[packed >> 40], (packed & (1 << 40) - 1) >> 1, packed & 1
        return f"{file} {'line' if is_line else 'record'} {position}"

    def _near_duplicate(self, loc: Location, record: Record, key: str) -> bool:
        from datasketch import MinHash

        text = " ".join(" ".join(holder[k].lower().split()) for holder, k in text_fields(record))
        shingles = {text[i : i + NEAR_DUP_SHINGLE] for i in range(max(1, len(text) - NEAR_DUP_SHINGLE + 1))}
        signature = MinHash(num_perm=NEAR_DUP_PERMUTATIONS, seed=1)
        signature.update_batch([s.encode() for s in shingles])
        matches = self.lsh.query(signature)
        if matches:
            first = self.lsh_locations[matches[0]]
            return self._drop(loc, "near_duplicate", f"nearly duplicates the record at {self._unpack(first)}")
        self.lsh.insert(key, signature)
        self.lsh_locations[key] = self._pack(loc)
        return False

    def _drop(self, loc: Location, code: str, reason: str) -> bool:
        self.builder.count(code)
        self.builder.drop(loc.problem(code, reason))
        return True
