"""Reading an evaluation config the LLaMA-Factory way: a YAML file plus `key=value` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

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


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["max_samples=10", "metrics=bleu,rouge"]` -> typed values (YAML scalars: 10 is an int)."""
    values = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise EvalConfigError(f"override {pair!r} is not key=value")
        values[key.strip()] = yaml.safe_load(raw) if raw else None
    return values


def load_eval_config(path: Path, overrides: list[str] | None = None) -> tuple[EvalConfig, list[str]]:
    """The validated config from the YAML at `path` updated by `overrides`, and the ignored LLaMA-Factory keys."""
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise EvalConfigError(f"cannot read evaluation config {str(path)!r}: {exc}") from exc
    if not isinstance(loaded, dict | None):
        raise EvalConfigError(f"evaluation config {str(path)!r} must be a mapping of keys to values")
    data = {**(loaded or {}), **parse_overrides(overrides or [])}
    data = {ALIASES.get(key, key): value for key, value in data.items()}
    ignored = sorted(key for key in data if key in IGNORED_KEYS)
    try:
        config = EvalConfig.model_validate({k: v for k, v in data.items() if k not in IGNORED_KEYS})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise EvalConfigError(f"invalid evaluation config: {problems}") from exc
    return config, ignored
