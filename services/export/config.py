"""Reading an export config the LLaMA-Factory way: a YAML file plus `key=value` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shared.config_files import ConfigFileError, describe_validation_error, load_config
from shared.schemas.export import ExportConfig

from .errors import ExportError


def load_export_config(path: Path | None, overrides: list[str] | None = None) -> ExportConfig:
    """Validate the YAML at `path` (optional) updated by `overrides`; errors name the field at fault."""
    try:
        return parse_export_config(load_config(path, overrides))
    except ConfigFileError as exc:
        raise ExportError(str(exc)) from exc


def parse_export_config(data: dict[str, Any]) -> ExportConfig:
    """Validate a config mapping; the ExportError names each field at fault on one line."""
    try:
        return ExportConfig.model_validate(data)
    except ValidationError as exc:
        raise ExportError(f"invalid export config: {describe_validation_error(exc)}") from exc
