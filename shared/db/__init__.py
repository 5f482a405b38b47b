"""SQLAlchemy models and sessions; PostgreSQL in the platform, a SQLite file in embedded mode."""

from .models import ApiKey, Artifact, Base, Checkpoint, File, Job, JobEvent, User, utcnow
from .session import alembic_config, get_engine, make_engine, migrate, reset_engine, session_scope

__all__ = [
    "ApiKey",
    "Artifact",
    "Base",
    "Checkpoint",
    "File",
    "Job",
    "JobEvent",
    "User",
    "alembic_config",
    "get_engine",
    "make_engine",
    "migrate",
    "reset_engine",
    "session_scope",
    "utcnow",
]
