"""Migrations build exactly the models' schema on PostgreSQL and SQLite; records and API keys round-trip."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from shared.auth import KEY_PREFIX, create_api_key, user_for_api_key
from shared.db import ApiKey, Base, Job, JobEvent, User, alembic_config, make_engine, migrate
from shared.db.jobs import create_job, ensure_user, is_cancel_requested, request_cancel
from shared.schemas import JobKind, JobStatus
from tests.infra import postgres_database, reset_process_state

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A brand-new, unmigrated database of each kind (the shared `database_url` one is left alone)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with postgres_database() as url:
        if url is None:
            pytest.skip("no PostgreSQL at 127.0.0.1:5432")
        yield url


@pytest.fixture
def engine(empty_db_url: str) -> Iterator[Engine]:
    engine = make_engine(empty_db_url)
    yield engine
    engine.dispose()


def schema_diff(engine: Engine) -> list[object]:
    """What Alembic autogenerate would change to make the database match the models (empty: nothing)."""
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_migrations_build_exactly_the_models(empty_db_url: str, engine: Engine) -> None:
    migrate(empty_db_url)

    assert tables(engine) == set(Base.metadata.tables) | {"alembic_version"}
    assert schema_diff(engine) == []


def test_downgrade_to_base_and_upgrade_again(empty_db_url: str, engine: Engine) -> None:
    migrate(empty_db_url)
    migrate(empty_db_url)  # already at head: nothing to do, no error

    command.downgrade(alembic_config(empty_db_url), "base")
    engine.dispose()  # SQLite: the schema changed under pooled connections
    assert tables(engine) <= {"alembic_version"}

    migrate(empty_db_url)
    engine.dispose()
    assert schema_diff(engine) == []


def test_job_and_event_round_trip(empty_db_url: str, engine: Engine) -> None:
    migrate(empty_db_url)
    config = {"lr": 2e-4, "target_modules": ["q_proj", "v_proj"], "note": "中文 ✓", "nested": {"a": None}}
    with Session(engine) as s, s.begin():
        ensure_user(s, "alice")
        ensure_user(s, "alice")  # second call finds the same user
        job = create_job(s, user_id="alice", kind=JobKind.TRAINING, config=config, model="tiny")
        s.add(JobEvent(id="ev-1", job_id=job.id, type="metrics", message="step 1", data={"loss": 1.5}))
        job_id = job.id

    with Session(engine) as s:
        loaded = s.get(Job, job_id)
        assert loaded is not None
        assert job_id.startswith("ftjob-")
        assert (loaded.user_id, loaded.kind, loaded.status, loaded.model) == ("alice", "training", "queued", "tiny")
        assert loaded.config == config and loaded.result == {} and loaded.error is None
        assert loaded.cancel_requested is False and loaded.attempts == 0
        event = s.scalars(select(JobEvent).where(JobEvent.job_id == job_id)).one()
        assert (event.type, event.message, event.data) == ("metrics", "step 1", {"loss": 1.5})


def test_timestamps_come_back_aware_in_utc(empty_db_url: str, engine: Engine) -> None:
    """SQLite drops the zone and PostgreSQL answers in its session's zone; both must read back UTC."""
    migrate(empty_db_url)
    written = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=timezone(timedelta(hours=8)))  # Beijing time
    with Session(engine) as s, s.begin():
        if engine.dialect.name == "postgresql":
            s.execute(text("SET TIME ZONE 'America/New_York'"))
        s.add(User(id="bob", email="bob@example.com", created_at=written))

    with Session(engine) as s:
        if engine.dialect.name == "postgresql":
            s.execute(text("SET TIME ZONE 'America/New_York'"))
        user = s.get(User, "bob")
        assert user is not None
        assert user.created_at == written and user.created_at.tzinfo == UTC
        assert s.scalar(select(User.id).where(User.created_at < written + timedelta(seconds=1))) == "bob"


def test_deleting_a_user_cascades_to_their_jobs(empty_db_url: str, engine: Engine) -> None:
    """SQLite enforces foreign keys only with the pragma `make_engine` sets."""
    migrate(empty_db_url)
    with Session(engine) as s, s.begin():
        ensure_user(s, "carol")
        create_job(s, user_id="carol", kind=JobKind.EVALUATION, config={})
    with Session(engine) as s, s.begin():
        s.execute(text("DELETE FROM users WHERE id = 'carol'"))
    with Session(engine) as s:
        assert s.scalars(select(Job)).all() == []


def test_cancel_request_stops_at_finished_jobs(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TUNEFLOW_DATABASE_URL", empty_db_url)
    monkeypatch.setenv("TUNEFLOW_HOME", str(tmp_path))
    reset_process_state()
    migrate(empty_db_url)
    from shared.db import session_scope

    try:
        with session_scope() as s:
            ensure_user(s, "dave")
            running = create_job(s, user_id="dave", kind=JobKind.TRAINING, config={}).id
            done = create_job(s, user_id="dave", kind=JobKind.TRAINING, config={})
            done.status = JobStatus.SUCCEEDED.value
            done_id = done.id

        assert request_cancel(running) is True and is_cancel_requested(running)
        assert request_cancel(done_id) is False and not is_cancel_requested(done_id)
        assert not is_cancel_requested("ftjob-missing")
        with pytest.raises(KeyError, match="ftjob-missing"):
            request_cancel("ftjob-missing")
    finally:
        reset_process_state()


def test_api_keys_are_stored_hashed_and_revocable(empty_db_url: str, engine: Engine) -> None:
    migrate(empty_db_url)
    with Session(engine) as s, s.begin():
        ensure_user(s, "erin")
        ensure_user(s, "frank")
        key = create_api_key(s, "erin", name="laptop")
        other = create_api_key(s, "frank")

    assert key.secret.startswith(KEY_PREFIX) and len(key.secret) > 40 and key.secret != other.secret
    with Session(engine) as s:
        row = s.get(ApiKey, key.id)
        assert row is not None
        assert row.key_hash == hashlib.sha256(key.secret.encode()).hexdigest()
        assert row.prefix == key.prefix and key.secret.startswith(row.prefix)
        # The secret is nowhere in the database, in any column of any key.
        dump = " ".join(str(v) for r in s.execute(text("SELECT * FROM api_keys")).all() for v in r)
        assert key.secret not in dump and key.secret[len(KEY_PREFIX) :] not in dump

    with Session(engine) as s, s.begin():
        user = user_for_api_key(s, key.secret)
        assert user is not None and user.id == "erin"
        assert getattr(user_for_api_key(s, other.secret), "id", None) == "frank"
        assert user_for_api_key(s, key.secret + "x") is None
        assert user_for_api_key(s, "") is None
    with Session(engine) as s, s.begin():
        row = s.get(ApiKey, key.id)
        assert row is not None and row.last_used_at is not None
        row.revoked = True

    with Session(engine) as s:
        assert user_for_api_key(s, key.secret) is None
        assert user_for_api_key(s, other.secret) is not None
