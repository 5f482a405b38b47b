"""LLaMA-Factory-style config files: YAML plus key=value overrides, errors naming what is wrong."""

import pytest

from shared.config_files import ConfigFileError, load_config, parse_overrides


def test_overrides_are_typed_yaml_scalars_and_win_over_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lora_rank: 8\nlearning_rate: 1.0e-4\ndataset: alpaca_en_demo\n")
    data = load_config(path, ["lora_rank=16", "bf16=true", "output_dir="])
    assert data == {
        "lora_rank": 16,
        "learning_rate": 1e-4,
        "dataset": "alpaca_en_demo",
        "bf16": True,
        "output_dir": None,
    }
    assert parse_overrides(["metrics=bleu,rouge"]) == {"metrics": "bleu,rouge"}


@pytest.mark.parametrize(
    ("content", "overrides", "message"),
    [
        ("- a\n- b\n", [], "must be a mapping"),
        ("key: [unclosed\n", [], "cannot read config"),
        ("a: 1\n", ["no_equals_sign"], "'no_equals_sign' is not key=value"),
        ("a: 1\n", ["=3"], "is not key=value"),
        ("a: 1\n", ["x=[1,"], "override 'x=[1,'"),
    ],
)
def test_bad_files_and_overrides_are_named(tmp_path, content, overrides, message):
    path = tmp_path / "c.yaml"
    path.write_text(content)
    with pytest.raises(ConfigFileError, match=message.replace("[", r"\[")):
        load_config(path, overrides)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigFileError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
