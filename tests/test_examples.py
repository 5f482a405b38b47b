"""Every shipped example config validates, so the README's commands never start from a broken file."""

from pathlib import Path

import pytest

from shared.config_files import load_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("name", ["lora_sft.yaml", "qlora_sft.yaml"])
def test_training_examples_validate(name):
    from tuneflow.train_cmd import split_config

    prepare, train = split_config(load_config(EXAMPLES / name))
    assert prepare.dataset == ["reviews"] and (Path(prepare.dataset_dir) / "dataset_info.json").is_file()
    assert train.finetuning_type == "lora"


def test_eval_example_validates():
    from services.evaluation.config import load_eval_config

    config, ignored = load_eval_config(EXAMPLES / "eval.yaml")
    assert ignored == [] and config.adapter_name_or_path == "saves/demo-lora/final"


def test_export_example_validates():
    from services.export.config import load_export_config

    config = load_export_config(EXAMPLES / "export.yaml")
    assert config.export_format == "merged" and config.export_dir == "exports/demo-merged"
