"""Reading an export config the LLaMA-Factory way: a YAML file plus `key=value` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from shared.schemas.export import ExportConfig

from .errors import ExportError


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["export_size=0.5", "export_format=onnx"]` -> typed values (YAML scalars: 0.5 is a float)."""
    values = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ExportError(f"override {pair!r} is not key=value")
        values[key.strip()] = yaml.safe_load(raw) if raw else None
    return values


def load_export_config(path: Path | None, overrides: list[str] | None = None) -> ExportConfig:
    """Validate the YAML at `path` (optional) updated by `overrides`; errors name the field at fault."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ExportError(f"cannot read export config {str(path)!r}: {exc}") from exc
        if not isinstance(loaded, dict | None):
            raise ExportError(f"export config {str(path)!r} must be a mapping of keys to values")
        data = loaded or {}
    data.update(parse_overrides(overrides or []))
    return parse_export_config(data)


def parse_export_config(data: dict[str, Any]) -> ExportConfig:
    """Validate a config mapping; the ExportError names each field at fault on one line."""
    try:
        return ExportConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ExportError(f"invalid export config: {problems}") from exc
