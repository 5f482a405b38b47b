"""Alembic environment: migrations run against the URL set by `shared.db.migrate`."""

from alembic import context

from shared.db.models import Base
from shared.db.session import make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Apply migrations with a real connection."""
    connectable = config.attributes.get("connection")
    if connectable is None:
        engine = make_engine(config.get_main_option("sqlalchemy.url"))
        try:
            with engine.connect() as connection:
                _run(connection)
        finally:
            engine.dispose()
    else:
        _run(connectable)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
