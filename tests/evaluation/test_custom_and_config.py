"""Custom metric resolution and the config contract."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.evaluation.metrics.custom import CustomMetricError, resolve_metric, run_custom_metric
from shared.schemas.evaluation import EvalConfig

EXAMPLE = "tests.evaluation.custom_metric_example"


def test_custom_metric_by_dotted_path() -> None:
    assert run_custom_metric(f"{EXAMPLE}:length_ratio", ["ab", "c"], ["abc", "def"]) == {"length_ratio": 0.5}


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("tests.evaluation.no_such_module:f", "cannot import module"),
        (f"{EXAMPLE}:missing", "has no attribute 'missing'"),
        (f"{EXAMPLE}:NOT_A_FUNCTION", "is a int, not a function"),
        ("no-such-entry-point", "no entry point of that name in group 'tuneflow.metrics'"),
    ],
)
def test_custom_metric_lookup_errors_name_the_problem(ref: str, message: str) -> None:
    with pytest.raises(CustomMetricError, match=message):
        resolve_metric(ref)


@pytest.mark.parametrize(
    ("name", "message"), [("returns_list", "returned list; expected dict"), ("returns_text", "must be finite numbers")]
)
def test_custom_metric_wrong_return_type(name: str, message: str) -> None:
    with pytest.raises(CustomMetricError, match=message):
        run_custom_metric(f"{EXAMPLE}:{name}", ["a"], ["a"])


def test_config_accepts_llamafactory_style_values() -> None:
    config = EvalConfig.model_validate(
        {"model_name_or_path": "m", "eval_dataset": "a.jsonl, b.jsonl", "metrics": "bleu,rouge,perplexity"}
    )
    assert config.eval_dataset == ["a.jsonl", "b.jsonl"]
    assert config.metrics == ["bleu", "rouge", "perplexity"]
    assert config.label == "m"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"metrics": ["mc_accuracy"]}, "mc_dataset: required"),
        ({"metrics": ["bleu"], "eval_dataset": []}, "eval_dataset: required"),
        ({"metrics": ["bleu score!"]}, "neither a built-in"),
        ({"cutoff_len": 64, "ppl_stride": 64}, "ppl_stride: must be smaller"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"unknown_key": 1}, "unknown_key"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EvalConfig.model_validate({"model_name_or_path": "m", "eval_dataset": ["d.jsonl"], **fields})
