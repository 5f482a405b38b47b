"""Turning generated token ids into text as they arrive: incremental detokenization and stop strings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def held_back(text: str, needles: Iterable[str]) -> int:
    """Length of the longest end of `text` that could be the start of one of `needles`.

    A streamer must hold those characters back: the next token may complete the needle.
    """
    longest = 0
    for needle in needles:
        for size in range(min(len(needle) - 1, len(text)), longest, -1):
            if text.endswith(needle[:size]):
                longest = size
                break
    return longest


class TextStream:
    """One sequence's text, grown token by token, cut at the first stop string.

    Decoding only a short window of recent tokens (the offsets scheme TGI and vLLM use) keeps each
    step cheap, and a window ending in half a UTF-8 character yields nothing until it is complete.
    """

    def __init__(self, tokenizer: Any, stop: tuple[str, ...] = ()) -> None:
        self._tokenizer = tokenizer
        self._stop = stop
        self._ids: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0
        self.text = ""
        self._emitted = 0
        self.stopped = False

    def add(self, token_id: int) -> str:
        """Append a token; return the text now safe to show. Sets `stopped` when a stop string appears."""
        self._ids.append(token_id)
        decode = self._tokenizer.decode
        prefix = decode(self._ids[self._prefix_offset : self._read_offset], skip_special_tokens=True)
        window = decode(self._ids[self._prefix_offset :], skip_special_tokens=True)
        if len(window) <= len(prefix) or window.endswith("\ufffd"):
            return ""
        self.text += window[len(prefix) :]
        self._prefix_offset, self._read_offset = self._read_offset, len(self._ids)
        return self._release()

    def finish(self) -> str:
        """The text still held back, once the sequence has ended for another reason."""
        delta = self.text[self._emitted :]
        self._emitted = len(self.text)
        return delta

    def _release(self) -> str:
        if self._stop:
            # Only the new text (and a stop string's length before it) can hold a new match.
            start = max(0, self._emitted - max(map(len, self._stop)))
            hits = [i for i in (self.text.find(s, start) for s in self._stop) if i >= 0]
            if hits:
                self.text = self.text[: min(hits)]
                self.stopped = True
                return self.finish()
        safe = len(self.text) - held_back(self.text[self._emitted :], self._stop)
        delta = self.text[self._emitted : safe]
        self._emitted = safe
        return delta
