"""Reading configs the LLaMA-Factory way: a flat YAML file plus `key=value` overrides from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


class ConfigFileError(ValueError):
    """The config file or an override cannot be read; the message names the file or the override."""


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["max_samples=10", "lr=1e-4"]` -> typed values (YAML scalars: 10 is an int; `key=` is None)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigFileError(f"override {pair!r} is not key=value")
        try:
            values[key.strip()] = yaml.safe_load(raw) if raw else None
        except yaml.YAMLError as exc:
            raise ConfigFileError(f"override {pair!r}: the value is not valid YAML ({exc})") from exc
    return values


def load_config(path: Path | None, overrides: list[str] | None = None) -> dict[str, Any]:
    """The mapping in the YAML at `path` (optional) with `overrides` applied on top."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigFileError(f"cannot read config {str(path)!r}: {exc}") from exc
        if not isinstance(loaded, dict | None):
            raise ConfigFileError(f"config {str(path)!r} must be a mapping of keys to values")
        data = dict(loaded or {})
    data.update(parse_overrides(overrides or []))
    return data


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming every field at fault: `lora_rank: Input should be greater than 0; ...`."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
