"""Reading an evaluation config the LLaMA-Factory way: a YAML file plus `key=value` overrides."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from shared.config_files import ConfigFileError, describe_validation_error, load_config
from shared.schemas.evaluation import EvalConfig

# LLaMA-Factory predict-config keys with a TuneFlow name of their own.
ALIASES = {"per_device_eval_batch_size": "batch_size"}
# Keys of LLaMA-Factory predict configs that mean nothing to an evaluation run: accepted and reported, not used.
IGNORED_KEYS = frozenset(
    {
        "stage",
        "do_predict",
        "predict_with_generate",
        "finetuning_type",
        "overwrite_cache",
        "overwrite_output_dir",
        "preprocessing_num_workers",
        "dataloader_num_workers",
        "report_to",
        "trust_remote_code",
        "bf16",
        "fp16",
        "ddp_timeout",
    }
)


class EvalConfigError(ValueError):
    """The config file or an override cannot become a valid EvalConfig; the message names the field."""


def load_eval_config(path: Path, overrides: list[str] | None = None) -> tuple[EvalConfig, list[str]]:
    """The validated config from the YAML at `path` updated by `overrides`, and the ignored LLaMA-Factory keys."""
    try:
        data = load_config(path, overrides)
    except ConfigFileError as exc:
        raise EvalConfigError(str(exc)) from exc
    data = {ALIASES.get(key, key): value for key, value in data.items()}
    ignored = sorted(key for key in data if key in IGNORED_KEYS)
    try:
        config = EvalConfig.model_validate({k: v for k, v in data.items() if k not in IGNORED_KEYS})
    except ValidationError as exc:
        raise EvalConfigError(f"invalid evaluation config: {describe_validation_error(exc)}") from exc
    return config, ignored
