"""Read rows from JSON, JSONL, CSV, Parquet and plain-text files, one at a time, each with its location.

A row that cannot even be parsed (bad JSON, bad UTF-8) comes back as a `Problem` instead of a value, so the
caller reports it and carries on. Every format streams, JSON arrays included (see `json_scan`), so a file
of any size is read in bounded memory.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import ijson

from shared.schemas.datasets import Problem

from .json_scan import JsonBreak, open_json, scan_json

SUFFIX_FORMATS = {".json": "json", ".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet", ".txt": "txt"}
PARQUET_BATCH_ROWS = 1024
# csv's default cap (128 KiB) rejects long conversations stored as JSON text in one cell.
csv.field_size_limit(1 << 30)


@dataclass(frozen=True)
class Location:
    """Where a row came from."""

    file: str
    line: int | None = None
    index: int | None = None

    def problem(self, code: str, reason: str, field: str | None = None) -> Problem:
        """A `Problem` at this location."""
        return Problem(file=self.file, line=self.line, index=self.index, field=field, code=code, reason=reason)


@dataclass(frozen=True)
class Row:
    """One raw row: a parsed value, or the problem that kept it from parsing."""

    loc: Location
    value: Any = None
    problem: Problem | None = None


def file_format(path: Path) -> str:
    """The reader for `path`, from its suffix."""
    fmt = SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path.name}: unsupported file type {path.suffix!r}; use one of {sorted(SUFFIX_FORMATS)}")
    return fmt


def read_rows(path: Path, name: str | None = None) -> Iterator[Row]:
    """Yield every row of `path` (a file, or a folder of same-format files read in name order).

    Args:
        path: The file or folder.
        name: How the file is named in problems (default: its file name).
    """
    if path.is_dir():
        for child in sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIX_FORMATS):
            yield from read_rows(child, f"{name or path.name}/{child.name}")
        return
    label = name or path.name
    readers = {"json": _read_json, "jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet, "txt": _read_txt}
    yield from readers[file_format(path)](path, label)


def _text_lines(path: Path, label: str) -> Iterator[tuple[Location, str | Problem]]:
    """Each non-blank line with its location, decoded, or the UTF-8 problem that stopped it decoding."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            if not raw.strip():
                continue
            loc = Location(label, line=number)
            try:
                yield loc, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield loc, loc.problem("invalid_utf8", f"bytes at column {exc.start + 1} are not valid UTF-8")


def _read_jsonl(path: Path, label: str) -> Iterator[Row]:
    for loc, text in _text_lines(path, label):
        if isinstance(text, Problem):
            yield Row(loc, problem=text)
            continue
        try:
            yield Row(loc, json.loads(text))
        except json.JSONDecodeError as exc:
            yield Row(loc, problem=loc.problem("invalid_json", f"not valid JSON: {exc.msg} at column {exc.colno}"))


def _read_json(path: Path, label: str) -> Iterator[Row]:
    shape = scan_json(path)
    if isinstance(shape, JsonBreak):
        yield from _read_refused_json(path, label, shape)
        return
    if shape.kind == "scalar":
        yield _not_records(label)
        return
    with open_json(path) as fh:
        # One object stands for an array of one record.
        for index, item in enumerate(ijson.items(fh, "item" if shape.kind == "array" else "")):
            yield Row(Location(label, index=index), _floats_for_decimals(item))


def _read_refused_json(path: Path, label: str, refusal: JsonBreak) -> Iterator[Row]:
    """What can still be read of a file the streaming parser refused: JSON Lines, NaN-holding JSON, or nothing."""
    if refusal.code == "json_lines":  # JSON Lines under a .json name, as `datasets` also accepts
        yield from _read_jsonl(path, label)
    elif refusal.code == "nonstandard_json":  # small enough to read whole, as json.load always did
        value = json.loads(path.read_bytes().removeprefix(codecs.BOM_UTF8))
        if not isinstance(value, list | dict):
            yield _not_records(label)
            return
        for index, item in enumerate(value if isinstance(value, list) else [value]):
            yield Row(Location(label, index=index), item)
    else:
        loc = Location(label, line=refusal.line, index=refusal.index)
        yield Row(loc, problem=loc.problem(refusal.code, f"{refusal.reason}; the file cannot be read"))


def _not_records(label: str) -> Row:
    loc = Location(label)
    return Row(loc, problem=loc.problem("wrong_type", "a JSON file must hold an array of records"))


def _floats_for_decimals(value: Any) -> Any:
    """ijson reads non-integral numbers as Decimal (its exact mode); json.loads gives float, and so do we."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: _floats_for_decimals(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_floats_for_decimals(item) for item in value]
    return value


def _read_csv(path: Path, label: str) -> Iterator[Row]:
    with open(path, "rb") as raw:
        # surrogateescape keeps reading past bad bytes, so one bad row is reported instead of the whole file.
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.DictReader(text)
        start = 2  # line 1 is the header
        for record in reader:
            loc = Location(label, line=start)
            start = reader.line_num + 1
            bad = next((key for key, val in record.items() if isinstance(val, str) and _has_surrogates(val)), None)
            if bad is not None:
                yield Row(loc, problem=loc.problem("invalid_utf8", "bytes are not valid UTF-8", field=bad))
            elif None in record:
                yield Row(loc, problem=loc.problem("wrong_type", "more cells than header columns"))
            else:
                yield Row(loc, {key: val for key, val in record.items() if val is not None})


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _read_parquet(path: Path, label: str) -> Iterator[Row]:
    import pyarrow.parquet as pq

    index = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=PARQUET_BATCH_ROWS):
        for record in batch.to_pylist():
            yield Row(Location(label, index=index), record)
            index += 1


def _read_txt(path: Path, label: str) -> Iterator[Row]:
    for loc, text in _text_lines(path, label):
        if isinstance(text, Problem):
            yield Row(loc, problem=text)
        else:
            yield Row(loc, {"text": text.rstrip("\r\n")})
