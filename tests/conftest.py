"""Session fixtures: real Redis, PostgreSQL (SQLite fallback), an S3 server, tiny models, embedded mode."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra import postgres_database, redis_server, reset_process_state, s3_server

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the hub is unreachable here; never wait on it
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REFERENCE_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "llamafactory-demo"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a real Redis (without db number)."""
    with redis_server() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """A fresh PostgreSQL database URL, or None where no server answers."""
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def database_url(postgres_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The database integration tests use: PostgreSQL when reachable, else a SQLite file; migrated."""
    from shared.db import migrate

    url = postgres_url or f"sqlite:///{tmp_path_factory.mktemp('db') / 'tuneflow.db'}"
    migrate(url)
    return url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """`host:port` of an in-process S3 server."""
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Embedded mode in a fresh home folder (SQLite, local objects, eager Celery); yields the home."""
    monkeypatch.setenv("TUNEFLOW_MODE", "embedded")
    monkeypatch.setenv("TUNEFLOW_HOME", str(tmp_path / "home"))
    for name in ("TUNEFLOW_DATABASE_URL", "TUNEFLOW_STORAGE_BACKEND", "TUNEFLOW_STORAGE_PATH"):
        monkeypatch.delenv(name, raising=False)
    reset_process_state()
    from shared.db import migrate
    from shared.settings import get_settings

    migrate(get_settings().resolved_database_url)
    yield tmp_path / "home"
    reset_process_state()


@pytest.fixture(scope="session")
def reference_data() -> Path:
    """LLaMA-Factory's demo datasets (read-only, beside the checkout)."""
    if not REFERENCE_DATA.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE_DATA}")
    return REFERENCE_DATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 64-dim random-init Qwen2 with a local BPE tokenizer and ChatML template."""
    from shared.modelkit import TinyModelSpec, build_tiny_model

    return build_tiny_model(TinyModelSpec(arch="qwen2"), tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same in the Llama architecture."""
    from shared.modelkit import TinyModelSpec, build_tiny_model

    return build_tiny_model(TinyModelSpec(arch="llama"), tmp_path_factory.mktemp("tiny-llama"))
