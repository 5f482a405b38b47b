"""`tuneflow data ...` commands: results on good input, non-zero exit and a located report on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tuneflow.cli import app

runner = CliRunner()


@pytest.fixture
def home(embedded: Path) -> Path:
    return embedded


def test_convert_round_trips_sharegpt_tools_through_openai(home: Path, reference_data: Path, tmp_path: Path) -> None:
    openai = tmp_path / "openai.jsonl"
    back = tmp_path / "sharegpt.jsonl"
    source = reference_data / "glaive_toolcall_en_demo.json"
    result = runner.invoke(
        app, ["data", "convert", "--input", str(source), "--output", str(openai), "--format", "openai"]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["data", "convert", "--input", str(openai), "--output", str(back), "--format", "sharegpt"]
    )
    assert result.exit_code == 0, result.output

    original = json.loads(source.read_text())
    converted = [json.loads(line) for line in back.read_text().splitlines()]
    assert len(converted) == len(original) == 300
    assert converted[0]["conversations"] == original[0]["conversations"]
    assert json.loads(converted[0]["tools"]) == json.loads(original[0]["tools"])


def test_convert_reports_records_the_layout_cannot_hold(home: Path, reference_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "alpaca.jsonl"
    source = reference_data / "glaive_toolcall_en_demo.json"
    result = runner.invoke(app, ["data", "convert", "--input", str(source), "--output", str(out), "--format", "alpaca"])
    assert result.exit_code == 1
    assert "cannot hold tool calls" in result.output


def test_validate_exits_nonzero_with_located_problems(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": 3}\n')
    result = runner.invoke(app, ["data", "validate", str(bad)])
    assert result.exit_code == 1
    assert "bad.jsonl line 2 [output]: 'output' must be a string, got a number (wrong_type)" in result.output
    good = tmp_path / "good.jsonl"
    good.write_text('{"instruction": "a", "output": "b"}\n')
    assert runner.invoke(app, ["data", "validate", str(good)]).exit_code == 0


def test_stats_counts_scripts_turns_and_tokens(home: Path, reference_data: Path, tiny_model_dir: Path) -> None:
    args = ["data", "stats", "alpaca_zh_demo", "--dataset-dir", str(reference_data), "--model", str(tiny_model_dir)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["records"] == 1000
    assert max(stats["languages"], key=stats["languages"].get) == "han"
    assert stats["turns"] == {"1": 1000}
    assert stats["tokens"]["count"] == 1000 and stats["tokens"]["max"] > stats["tokens"]["p50"] > 0


def test_preview_marks_trained_tokens(home: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    data = tmp_path / "one.jsonl"
    data.write_text('{"instruction": "Say hi", "output": "Hi there"}\n')
    args = ["data", "preview", "--model", str(tiny_model_dir), "--dataset", str(data), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    trained = "".join(t["text"] for t in row if t["trained"])
    assert trained == "Hi there<|im_end|>\n"
    text = runner.invoke(app, args[:-1]).stdout
    assert "⟦Hi there<|im_end|>\n⟧" in text


def test_prepare_submit_uploads_and_runs_the_task(home: Path, reference_data: Path, tiny_model_dir: Path) -> None:
    args = ["data", "prepare", "--model", str(tiny_model_dir), "--dataset", "identity"]
    result = runner.invoke(app, [*args, "--dataset-dir", str(reference_data), "--submit"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["num_examples"] == {"train": 91}
    assert (home / "objects" / summary["splits"]["train"]).is_file()


def test_validate_reports_records_over_the_length_limit(home: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    data = tmp_path / "lengths.jsonl"
    data.write_text(
        '{"instruction": "a", "output": "b"}\n' + json.dumps({"instruction": "long", "output": "x " * 400}) + "\n"
    )
    args = ["data", "validate", str(data), "--model", str(tiny_model_dir), "--cutoff-len", "128"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "lengths.jsonl line 2: " in result.output and "exceed cutoff_len 128" in result.output
    assert "line 1" not in result.output
