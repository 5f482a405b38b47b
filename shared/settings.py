"""One settings class for every service, read from `TUNEFLOW_*` environment variables (or `.env`)."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "minioadmin", "secret", "password", "dev-secret"}


class Mode(StrEnum):
    """How the platform runs: all in one process, or as separate services."""

    EMBEDDED = "embedded"
    DISTRIBUTED = "distributed"


class Environment(StrEnum):
    """Deployment stage; placeholder secrets are refused outside development."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class StorageBackend(StrEnum):
    """Where objects live."""

    LOCAL = "local"
    S3 = "s3"


class Settings(BaseSettings):
    """Every knob of the platform. Field descriptions double as the configuration reference."""

    model_config = SettingsConfigDict(env_prefix="TUNEFLOW_", env_file=".env", extra="ignore")
    # Defaults go in `default=`: mypy sees a field as optional only through that keyword.

    mode: Mode = Field(
        default=Mode.EMBEDDED, description="`embedded`: one process, eager Celery; `distributed`: workers."
    )
    environment: Environment = Field(
        default=Environment.DEVELOPMENT,
        description="`development` or `production`; production refuses placeholder secrets.",
    )
    home: Path = Field(
        default=Path(".tuneflow"), description="Folder for embedded-mode state: SQLite file, objects, logs."
    )

    database_url: str = Field(default="", description="SQLAlchemy URL; empty means a SQLite file under `home`.")
    broker_url: str = Field(default="redis://127.0.0.1:6379/0", description="Celery broker (Redis).")
    result_backend: str = Field(default="", description="Celery result backend; empty means the broker URL.")
    visibility_timeout_s: int = Field(
        default=7 * 24 * 3600,
        description="Seconds before Redis redelivers an unacknowledged task; must exceed the longest job or it runs twice.",
    )
    worker_heartbeat_s: int = Field(default=30, description="Seconds between a running job's lease renewals.")
    job_lease_s: int = Field(
        default=180, description="Seconds after which a running job with a stale lease is requeued."
    )

    storage_backend: StorageBackend = Field(default=StorageBackend.LOCAL, description="`local` folder or `s3` (MinIO).")
    storage_path: Path | None = Field(default=None, description="Local backend folder; default `home/objects`.")
    s3_endpoint: str = Field(default="127.0.0.1:9000", description="S3/MinIO endpoint as host:port.")
    s3_access_key: str = Field(default="", description="S3 access key.")
    s3_secret_key: SecretStr = Field(
        default=SecretStr(""), description="S3 secret key; required in production with the `s3` backend."
    )
    s3_bucket: str = Field(default="tuneflow", description="Bucket holding every object.")
    s3_secure: bool = Field(default=False, description="Use HTTPS to reach S3.")
    s3_region: str = Field(default="us-east-1", description="S3 region.")
    s3_public_endpoint: str = Field(
        default="", description="host:port that clients outside the platform reach S3 at, for presigned URLs."
    )
    presign_expiry_s: int = Field(
        default=900, ge=1, le=7 * 24 * 3600, description="Lifetime of presigned URLs in seconds (1 s to 7 days)."
    )

    secret_key: SecretStr = Field(
        default=SecretStr("dev-secret"), description="Signs gateway tokens; required in production."
    )
    gateway_url: str = Field(default="http://127.0.0.1:8000", description="Where clients (UI, CLI) reach the gateway.")
    inference_url: str = Field(default="http://127.0.0.1:8001", description="Where the inference server listens.")
    model_cache: Path | None = Field(
        default=None, description="Where models fetched from the object store are cached; default `home/model-cache`."
    )

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            secrets = {"secret_key": self.secret_key.get_secret_value()}
            if self.storage_backend is StorageBackend.S3:
                secrets["s3_secret_key"] = self.s3_secret_key.get_secret_value()
            bad = [
                f"TUNEFLOW_{name.upper()}" for name, value in secrets.items() if value.lower() in PLACEHOLDER_SECRETS
            ]
            if bad:
                raise ValueError(f"set {' and '.join(bad)} to a real secret in production (placeholder or empty)")
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file under `home`."""
        return self.database_url or f"sqlite:///{(self.home / 'tuneflow.db').resolve()}"

    @property
    def resolved_storage_path(self) -> Path:
        """The local object folder."""
        return (self.storage_path or self.home / "objects").resolve()

    @property
    def resolved_model_cache(self) -> Path:
        """Folder for models downloaded from the object store."""
        return (self.model_cache or self.home / "model-cache").resolve()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; call `get_settings.cache_clear()` after changing the environment)."""
    return Settings()
