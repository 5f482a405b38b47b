"""Two data-parallel CPU processes (torchrun, gloo) match one process at the same global batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.conftest import WORDS, job_row, read_trainer_log, run_training, task_records


@pytest.mark.slow
def test_two_processes_match_one(embedded: Path, task_model_dir: Path) -> None:
    # 16 records, 4 steps of 4: one epoch, so both runs see exactly the same samples in each step.
    records = task_records([*WORDS, "summer"])
    common = {"finetuning_type": "lora", "learning_rate": 0.02, "max_steps": 4, "logging_steps": 1, "seed": 3}
    single, _ = run_training(task_model_dir, records, per_device_train_batch_size=4, **common)
    double, _ = run_training(task_model_dir, records, per_device_train_batch_size=2, num_processes=2, **common)
    assert job_row(single)["status"] == "succeeded"
    assert job_row(double)["status"] == "succeeded", job_row(double)["error"]
    one = [r["loss"] for r in read_trainer_log(single)]
    two = [r["loss"] for r in read_trainer_log(double)]
    assert len(one) == len(two) == 4 and one[-1] < one[0] - 0.1
    # Same samples per optimizer step, token-weighted loss averaged across processes: equal up to float order.
    assert two == pytest.approx(one, rel=2e-3)
