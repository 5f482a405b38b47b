"""Streaming checks of a JSON file before its records are read: syntax, top-level shape, and where it breaks.

A JSON array is read in two streaming passes (ijson's C parser), so a file of any size is read in constant
memory and a file with a syntax error yields no records at all, as before the array was streamed.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import ijson

EXACT_LOCATION_MAX_BYTES = 256 * 2**20  # a broken file up to this size is decoded whole to name line and column


@dataclass(frozen=True)
class JsonShape:
    """What a syntactically valid JSON file holds at the top level."""

    kind: str  # "array", "object" or "scalar"


@dataclass(frozen=True)
class JsonBreak:
    """Where and why a JSON file fails to parse."""

    code: str  # invalid_json | invalid_utf8 | json_lines (several values one after another) | nonstandard_json
    reason: str
    line: int | None = None
    index: int | None = None  # the array element that breaks, when the line is not known


@contextmanager
def open_json(path: Path) -> Iterator[IO[bytes]]:
    """`path` opened for reading, past a UTF-8 byte-order mark if it starts with one."""
    with open(path, "rb") as fh:
        if fh.read(len(codecs.BOM_UTF8)) != codecs.BOM_UTF8:
            fh.seek(0)
        yield fh


def scan_json(path: Path) -> JsonShape | JsonBreak:
    """Parse `path` once without building values: its shape, or where it breaks."""
    depth, complete, top = 0, 0, None
    try:
        with open_json(path) as fh:
            for event, _ in ijson.basic_parse(fh):
                top = top or event
                if event in ("start_map", "start_array"):
                    depth += 1
                elif event in ("end_map", "end_array"):
                    depth -= 1
                if depth == 1 and event not in ("start_array", "map_key"):
                    complete += 1  # an element of the top-level array has just ended
    except ijson.JSONError as exc:
        if "trailing garbage" in str(exc):
            return JsonBreak("json_lines", "several JSON values one after another")
        return _locate(path, str(exc), elements_read=complete)
    kind = {"start_array": "array", "start_map": "object"}.get(top or "", "scalar")
    return JsonShape(kind)


def _locate(path: Path, message: str, elements_read: int) -> JsonBreak:
    """The break with the best location: line and column for files small enough to decode whole."""
    utf8 = "UTF8" in message
    code = "invalid_utf8" if utf8 else "invalid_json"
    if path.stat().st_size > EXACT_LOCATION_MAX_BYTES:
        first_line = message.strip().splitlines()[0]
        return JsonBreak(code, f"not valid JSON after {elements_read} records: {first_line}", index=elements_read)
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return JsonBreak("invalid_utf8", "bytes are not valid UTF-8", line=data.count(b"\n", 0, exc.start) + 1)
    except json.JSONDecodeError as exc:
        return JsonBreak("invalid_json", f"not valid JSON: {exc.msg} at column {exc.colno}", line=exc.lineno)
    # Python's json reads what ijson refused: NaN or Infinity, which JSON lacks but json.dumps writes.
    return JsonBreak("nonstandard_json", "holds NaN or Infinity")
