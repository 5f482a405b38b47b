"""Settings come from TUNEFLOW_* variables, refuse placeholder secrets in production, and are documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from shared.settings import Environment, Mode, Settings, StorageBackend, get_settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TUNEFLOW_* variable or .env file from the machine leaks into these tests."""
    import os

    for name in [n for n in os.environ if n.startswith("TUNEFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()


def test_variables_use_the_tuneflow_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEFLOW_MODE", "distributed")
    monkeypatch.setenv("TUNEFLOW_S3_BUCKET", "models")
    monkeypatch.setenv("TUNEFLOW_PRESIGN_EXPIRY_S", "60")
    monkeypatch.setenv("S3_BUCKET", "unprefixed-is-ignored")

    settings = Settings()

    assert (settings.mode, settings.s3_bucket, settings.presign_expiry_s) == (Mode.DISTRIBUTED, "models", 60)


def test_dotenv_file_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TUNEFLOW_S3_BUCKET=from-file\nTUNEFLOW_S3_REGION=eu-west-1\n")
    monkeypatch.setenv("TUNEFLOW_S3_BUCKET", "from-env")

    settings = Settings()

    assert (settings.s3_bucket, settings.s3_region) == ("from-env", "eu-west-1")


def test_get_settings_is_cached_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_settings() is get_settings()
    monkeypatch.setenv("TUNEFLOW_S3_BUCKET", "changed")
    assert get_settings().s3_bucket == "tuneflow"
    get_settings.cache_clear()
    assert get_settings().s3_bucket == "changed"


def test_embedded_defaults_keep_everything_under_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")

    assert settings.mode is Mode.EMBEDDED
    assert settings.storage_backend is StorageBackend.LOCAL
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'home' / 'tuneflow.db'}"
    assert settings.resolved_storage_path == tmp_path / "home" / "objects"
    assert settings.resolved_model_cache == tmp_path / "home" / "model-cache"


def test_relative_home_resolves_against_the_working_directory(tmp_path: Path) -> None:
    settings = Settings()

    assert settings.resolved_database_url == f"sqlite:///{tmp_path / '.tuneflow' / 'tuneflow.db'}"


def test_explicit_database_url_and_storage_path_win(tmp_path: Path) -> None:
    settings = Settings(database_url="postgresql+psycopg://db/tuneflow", storage_path=tmp_path / "objs")

    assert settings.resolved_database_url == "postgresql+psycopg://db/tuneflow"
    assert settings.resolved_storage_path == tmp_path / "objs"


@pytest.mark.parametrize("placeholder", ["dev-secret", "changeme", "CHANGEME", "secret", ""])
def test_production_refuses_a_placeholder_secret_key(monkeypatch: pytest.MonkeyPatch, placeholder: str) -> None:
    monkeypatch.setenv("TUNEFLOW_ENVIRONMENT", "production")
    monkeypatch.setenv("TUNEFLOW_SECRET_KEY", placeholder)

    with pytest.raises(ValidationError, match="set TUNEFLOW_SECRET_KEY to a real secret in production"):
        Settings()


def test_production_names_every_placeholder_secret() -> None:
    with pytest.raises(ValidationError, match="TUNEFLOW_SECRET_KEY and TUNEFLOW_S3_SECRET_KEY"):
        Settings(environment="production", storage_backend="s3", s3_secret_key="minioadmin")


def test_production_accepts_real_secrets() -> None:
    settings = Settings(
        environment="production", storage_backend="s3", secret_key="k" * 32, s3_secret_key="s3-" + "x" * 20
    )

    assert settings.environment is Environment.PRODUCTION
    assert isinstance(settings.secret_key, SecretStr) and "kkkk" not in repr(settings)  # never printed


def test_development_allows_placeholders() -> None:
    assert Settings(storage_backend="s3").s3_secret_key.get_secret_value() == ""


def test_presign_expiry_is_bounded() -> None:
    with pytest.raises(ValidationError, match="presign_expiry_s"):
        Settings(presign_expiry_s=0)
    with pytest.raises(ValidationError, match="presign_expiry_s"):
        Settings(presign_expiry_s=8 * 24 * 3600)


def shown_default(value: object) -> str:
    """How docs/configuration.md shows a default."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    value = getattr(value, "value", value)  # enums by their value
    return "(empty)" if value in ("", None) else f"`{value}`"


def test_configuration_doc_lists_every_setting_as_it_is() -> None:
    doc_rows = {line.split("|")[1].strip(): line for line in DOC.read_text().splitlines() if line.startswith("| `")}

    for name, field in Settings.model_fields.items():
        variable = f"`TUNEFLOW_{name.upper()}`"
        expected = f"| {variable} | {shown_default(field.default)} | {field.description} |"
        assert doc_rows.get(variable) == expected, f"docs/configuration.md: {variable} should read\n{expected}"
    assert len(doc_rows) == len(Settings.model_fields), "the doc lists a variable Settings does not have"
