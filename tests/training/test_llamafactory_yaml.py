"""LLaMA-Factory YAMLs run through `tuneflow train` with only model_name_or_path changed (plus the dataset folder
the reference YAML leaves to the command line, and small max_samples/max_steps to keep the test short)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.training.conftest import job_row

SHARED = Path(__file__).resolve().parents[3] / "shared"
LORA_SFT = SHARED / "bench" / "llamafactory" / "lora_sft.yaml"
DATA_DIR = SHARED / "data" / "llamafactory-demo"

# LLaMA-Factory's examples/train_qlora/*_otfq.yaml layout, on the same data.
QLORA_SFT = """\
### model
model_name_or_path: MODEL_DIR
quantization_bit: 4
quantization_method: bnb
double_quantization: true
trust_remote_code: true

### method
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all

### dataset
dataset: identity,alpaca_en_demo
template: qwen
cutoff_len: 256
max_samples: 1000
overwrite_cache: true
preprocessing_num_workers: 16
dataloader_num_workers: 0

### output
output_dir: saves/qwen/lora/sft
logging_steps: 1
save_steps: 500
plot_loss: true
overwrite_output_dir: true
save_only_model: false
report_to: none

### train
per_device_train_batch_size: 1
gradient_accumulation_steps: 2
learning_rate: 1.0e-4
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: false
ddp_timeout: 180000000
resume_from_checkpoint: null
"""


def _train(args: list[str]) -> tuple[str, str]:
    from tuneflow.cli import app

    result = CliRunner().invoke(app, ["train", *args])
    assert result.exit_code == 0, result.output
    job_id = next(
        line.split()[1] for line in result.output.splitlines() if line.startswith("job ") and "submitted" in line
    )
    return job_id, result.output


def test_reference_lora_sft_yaml(embedded: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    if not LORA_SFT.exists():
        pytest.skip(f"{LORA_SFT} not found")
    out = tmp_path / "out"
    job_id, output = _train(
        [
            str(LORA_SFT),
            f"model_name_or_path={tiny_model_dir}",
            f"dataset_dir={DATA_DIR}",
            "max_samples=12",
            "max_steps=3",
            f"output_dir={out}",
        ]
    )
    assert "ignoring LLaMA-Factory keys" in output and "include_num_input_tokens_seen" in output
    row = job_row(job_id)
    assert row["status"] == "succeeded"
    assert row["config"]["lora_target"] == "all" and row["config"]["warmup_steps"] == 0.1
    assert row["result"]["metrics"]["global_step"] == 3
    assert json.loads((out / "final" / "adapter_config.json").read_text())["r"] == 8  # copied to output_dir


@pytest.mark.slow
def test_qlora_yaml(embedded: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the YAML's relative output_dir lands here, not in the checkout
    config = tmp_path / "qlora.yaml"
    config.write_text(QLORA_SFT.replace("MODEL_DIR", str(tiny_model_dir)))
    job_id, output = _train(
        [str(config), f"model_name_or_path={tiny_model_dir}", f"dataset_dir={DATA_DIR}", "max_samples=8", "max_steps=2"]
    )
    row = job_row(job_id)
    assert row["status"] == "succeeded", row["error"]
    assert row["config"]["quantization_bit"] == 4 and row["result"]["metrics"]["global_step"] == 2
    assert (tmp_path / "saves" / "qwen" / "lora" / "sft" / "final" / "adapter_config.json").is_file()


def test_unknown_key_fails_before_any_work(embedded: Path, tiny_model_dir: Path) -> None:
    from tuneflow.cli import app

    result = CliRunner().invoke(app, ["train", str(LORA_SFT), f"model_name_or_path={tiny_model_dir}", "lora_rnak=4"])
    assert result.exit_code == 2 and "unknown config keys: lora_rnak" in result.output
