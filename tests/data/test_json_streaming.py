"""JSON files are streamed: same rows as json.load, bounded memory, and breaks located by line or by record."""

from __future__ import annotations

import codecs
import json
import math
import tracemalloc
from pathlib import Path

import pytest

from services.data import json_scan
from services.data.readers import read_rows


@pytest.mark.parametrize("name", ["alpaca_zh_demo.json", "glaive_toolcall_en_demo.json", "dpo_en_demo.json"])
def test_rows_equal_json_load_on_reference_files(reference_data: Path, name: str) -> None:
    rows = list(read_rows(reference_data / name))
    expected = json.loads((reference_data / name).read_text(encoding="utf-8"))
    assert [row.value for row in rows] == expected
    assert [row.loc.index for row in rows] == list(range(len(expected)))
    assert all(row.problem is None for row in rows)


def test_numbers_keep_their_python_types(tmp_path: Path) -> None:
    path = tmp_path / "n.json"
    path.write_text('[{"score": 1.5, "count": 3, "big": 12345678901234567890, "flag": true, "none": null}]')
    (row,) = read_rows(path)
    assert row.value == {"score": 1.5, "count": 3, "big": 12345678901234567890, "flag": True, "none": None}
    assert type(row.value["score"]) is float and type(row.value["count"]) is int


def test_a_byte_order_mark_is_skipped_in_json_and_jsonl(tmp_path: Path) -> None:
    records = [{"instruction": "你好", "output": "hi"}, {"instruction": "a", "output": "b"}]
    array, lines = tmp_path / "bom.json", tmp_path / "bom.jsonl"
    array.write_bytes(codecs.BOM_UTF8 + json.dumps(records, ensure_ascii=False).encode())
    lines.write_bytes(codecs.BOM_UTF8 + "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode())
    assert [row.value for row in read_rows(array)] == records
    assert [row.value for row in read_rows(lines)] == records


def test_one_object_is_one_record_and_a_scalar_is_refused(tmp_path: Path) -> None:
    one, scalar = tmp_path / "one.json", tmp_path / "scalar.json"
    one.write_text('{"text": "solo"}')
    scalar.write_text('"just a string"')
    assert [row.value for row in read_rows(one)] == [{"text": "solo"}]
    (row,) = read_rows(scalar)
    assert row.problem is not None and row.problem.code == "wrong_type"


def test_json_lines_under_a_json_name_are_read_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "lines.json"
    path.write_text('{"text": "a"}\n{"text": "b"}\n')
    assert [(row.loc.line, row.value) for row in read_rows(path)] == [(1, {"text": "a"}), (2, {"text": "b"})]


def test_a_break_in_a_big_file_is_placed_by_record_and_yields_no_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(json_scan, "EXACT_LOCATION_MAX_BYTES", 0)  # every file counts as too big to decode whole
    broken, bad_bytes = tmp_path / "broken.json", tmp_path / "bytes.json"
    broken.write_text('[{"text": "a"}, {"text": "b"}, {"text": "c",}, {"text": "d"}]')
    bad_bytes.write_bytes(b'[{"text": "a"}, {"text": "\xff"}]')

    (row,) = read_rows(broken)
    assert (row.problem.code, row.problem.index, row.problem.line) == ("invalid_json", 2, None)
    assert "after 2 records" in row.problem.reason and "cannot be read" in row.problem.reason
    (row,) = read_rows(bad_bytes)
    assert (row.problem.code, row.problem.index) == ("invalid_utf8", 1)


def test_nan_and_infinity_read_as_json_load_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    path.write_text('[{"text": "a", "score": NaN}, {"text": "b", "score": -Infinity}]')
    rows = list(read_rows(path))
    assert [row.loc.index for row in rows] == [0, 1] and all(row.problem is None for row in rows)
    assert math.isnan(rows[0].value["score"]) and rows[1].value == {"text": "b", "score": -math.inf}


def test_a_break_in_a_small_file_is_placed_by_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "small.json"
    path.write_text('[\n  {"text": "a"},\n  {"text": "b",}\n]\n')
    (row,) = read_rows(path)
    assert (row.problem.code, row.problem.line, row.problem.index) == ("invalid_json", 3, None)
    assert "column 16" in row.problem.reason


def test_a_big_array_is_read_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    record = {"instruction": "Summarise the review. " * 8, "input": "", "output": "好评 " * 40}
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("[" + ",\n".join(json.dumps(record, ensure_ascii=False) for _ in range(12_000)) + "]")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        count = sum(1 for row in read_rows(path) if row.value == record)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 12_000
    assert size > 5_000_000 and peak < size / 10, f"peak {peak} bytes for a {size}-byte file"
