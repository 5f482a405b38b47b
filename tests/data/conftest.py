"""Fixtures for the data service tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.storage import ObjectStore
from shared.storage.local import LocalObjectStore


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    """A fresh local object store."""
    return LocalObjectStore(tmp_path / "objects")


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    """The tiny model's tokenizer (ChatML chat template with tools)."""
    from shared.modelkit import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))
