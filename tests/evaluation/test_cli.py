"""`tuneflow eval CONFIG.yaml key=value ...` in embedded mode on LLaMA-Factory's demo data."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from tuneflow.cli import app

from .conftest import DATA


def test_eval_command_writes_results_and_predictions(
    embedded: Path, tiny_model_dir: Path, reference_data: Path, tmp_path: Path
) -> None:
    config = tmp_path / "eval.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model_name_or_path": str(tiny_model_dir),
                "eval_dataset": "alpaca_zh_demo,alpaca_en_demo",
                "dataset_dir": str(reference_data),
                "template": "qwen",
                "metrics": "bleu,chrf,bleu-4,rouge,perplexity,mc_accuracy,tests.evaluation.custom_metric_example:length_ratio",
                "mc_dataset": str(DATA / "mc_20.csv"),
                "stage": "sft",  # a LLaMA-Factory key evaluation ignores
                "per_device_eval_batch_size": 4,
            }
        )
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["eval", str(config), "max_samples=3", "max_new_tokens=8", "cutoff_len=256", f"output_dir={out}"]
    )
    assert result.exit_code == 0, result.output
    assert "note: stage is a LLaMA-Factory training key" in result.output
    results = json.loads((out / "results.json").read_text())
    assert {
        "bleu",
        "chrf",
        "bleu-4",
        "rouge-1",
        "rouge-2",
        "rouge-l",
        "perplexity",
        "mc_accuracy",
        "length_ratio",
    } <= set(results["metrics"])
    assert results["config"]["batch_size"] == 4
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 6  # max_samples applies to each dataset, as in LLaMA-Factory
    assert predictions[0]["reference"].startswith("细胞理论")
    assert len((out / "mc_predictions.jsonl").read_text().splitlines()) == 20


def test_eval_command_reports_bad_config(embedded: Path, tmp_path: Path) -> None:
    config = tmp_path / "eval.yaml"
    config.write_text("model_name_or_path: m\nmetrics: mc_accuracy\noutput_dir: out\n")
    result = CliRunner().invoke(app, ["eval", str(config)])
    assert result.exit_code == 1
    assert "mc_dataset: required" in result.output
