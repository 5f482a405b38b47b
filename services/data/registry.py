"""LLaMA-Factory's `dataset_info.json` registry, read as is, and format detection for bare files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .readers import read_rows

REGISTRY_FILE = "dataset_info.json"
Formatting = Literal["alpaca", "sharegpt", "openai", "turns"]


class Columns(BaseModel):
    """Which raw column holds what (LLaMA-Factory names and defaults)."""

    model_config = ConfigDict(extra="ignore")

    prompt: str = "instruction"
    query: str = "input"
    response: str = "output"
    history: str | None = "history"  # LLaMA-Factory needs these two mapped; reading them when present is harmless
    system: str | None = "system"
    messages: str = "conversations"
    tools: str | None = "tools"
    chosen: str | None = None
    rejected: str | None = None
    kto_tag: str | None = None


class Tags(BaseModel):
    """Keys and role values inside sharegpt messages."""

    model_config = ConfigDict(extra="ignore")

    role_tag: str = "from"
    content_tag: str = "value"
    user_tag: str = "human"
    assistant_tag: str = "gpt"
    observation_tag: str = "observation"
    function_tag: str = "function_call"
    system_tag: str = "system"


OPENAI_TAGS = Tags(
    role_tag="role",
    content_tag="content",
    user_tag="user",
    assistant_tag="assistant",
    observation_tag="tool",
    function_tag="function_call",
    system_tag="system",
)


class DatasetAttr(BaseModel):
    """One registry entry, as in LLaMA-Factory's `dataset_info.json`."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(description="Registry name, or the file path for bare files.")
    file_name: str | None = Field(None, description="File or folder, relative to the dataset folder.")
    hf_hub_url: str | None = Field(None, description="Hub datasets are not fetched by this service.")
    formatting: Formatting = Field("alpaca", description="Record layout.")
    ranking: bool = Field(False, description="Preference pairs (chosen / rejected).")
    num_samples: int | None = Field(None, description="Use only this many records.")
    columns: Columns = Field(default_factory=Columns, description="Column mapping.")
    tags: Tags = Field(default_factory=Tags, description="sharegpt message keys.")


def load_registry(dataset_dir: Path) -> dict[str, dict[str, Any]]:
    """Read `dataset_info.json` from `dataset_dir`."""
    path = dataset_dir / REGISTRY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {REGISTRY_FILE} in {dataset_dir}")
    try:
        registry = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{REGISTRY_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(registry, dict):
        raise ValueError(f"{REGISTRY_FILE} must map dataset names to descriptions")
    return registry


def resolve_dataset(name: str, dataset_dir: Path | None) -> tuple[DatasetAttr, Path]:
    """The attributes and local path of dataset `name`.

    Args:
        name: A registry name when `dataset_dir` is given, else a file path.
        dataset_dir: Folder holding `dataset_info.json`, or None.
    """
    if dataset_dir is None:
        path = Path(name).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"dataset file {name!r} does not exist (give dataset_dir to use registry names)")
        return detect_attr(path, name), path
    registry = load_registry(dataset_dir)
    if name not in registry:
        raise KeyError(f"dataset {name!r} is not in {dataset_dir / REGISTRY_FILE}")
    entry = registry[name]
    attr = DatasetAttr.model_validate({"name": name, **entry})
    if attr.file_name is None:
        raise ValueError(f"dataset {name!r} is a hub dataset; only local files are prepared (give file_name)")
    path = dataset_dir / attr.file_name
    if not path.resolve().is_relative_to(dataset_dir.resolve()):
        raise PermissionError(f"dataset {name!r}: file_name {attr.file_name!r} points outside the dataset folder")
    if not path.exists():
        raise FileNotFoundError(f"dataset {name!r}: file {attr.file_name!r} is not in {dataset_dir}")
    return attr, path


def dataset_label(attr: DatasetAttr, path: Path, dataset_dir: Path | None) -> str:
    """How a dataset's file is named in problems: as in the registry, else by its file name."""
    return attr.file_name if dataset_dir is not None and attr.file_name else path.name


def referenced_files(dataset_dir: Path, names: list[str] | None = None) -> list[str]:
    """File names the registry entries `names` (default: all with a file) point at, if present."""
    registry = load_registry(dataset_dir)
    chosen = names or list(registry)
    files = []
    for name in chosen:
        file_name = registry.get(name, {}).get("file_name")
        if file_name and (dataset_dir / file_name).exists():
            files.append(file_name)
    return files


def detect_attr(path: Path, name: str) -> DatasetAttr:
    """Guess the layout of a bare file from its first readable record."""
    first = next((row.value for row in read_rows(path) if isinstance(row.value, dict)), None)
    return DatasetAttr(name=name, file_name=path.name, **guess_layout(first or {}))


def guess_layout(record: dict[str, Any]) -> dict[str, Any]:
    """Registry fields (`formatting`, `ranking`, `columns`, `tags`) that fit `record`'s keys."""
    ranking = "chosen" in record and "rejected" in record
    columns: dict[str, Any] = {"chosen": "chosen", "rejected": "rejected"} if ranking else {}
    for key in ("messages", "conversations", "conversation"):
        turns = record.get(key)
        if not isinstance(turns, list):
            continue
        columns["messages"] = key
        first = next((t for t in turns if isinstance(t, dict)), {})
        if "role" in first:
            return {"formatting": "openai", "ranking": ranking, "columns": columns}
        if "from" in first or not first:
            return {"formatting": "sharegpt", "ranking": ranking, "columns": columns}
        return {"formatting": "turns", "ranking": ranking, "columns": columns}
    if "text" in record and "instruction" not in record:
        columns["prompt"] = "text"
    return {"formatting": "alpaca", "ranking": ranking, "columns": columns}
