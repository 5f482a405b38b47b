"""Who is calling, and which models they may address.

In the platform a request's Bearer key is checked against the shared database, and `ft:` names
resolve through the caller's own succeeded jobs only; someone else's model answers exactly like a
model that does not exist. Standalone, an optional shared key guards the server.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from shared.db import Job, session_scope
from shared.schemas import JobStatus

from .config import ServeConfig
from .errors import APIError, model_not_found
from .model_cache import Target
from .schemas import ModelCard

T = TypeVar("T")


@dataclass(frozen=True)
class Caller:
    """An authenticated client; `user_id` is None on a standalone server."""

    user_id: str | None = None


async def off_the_loop(config: ServeConfig, fn: Callable[..., T], *args: object) -> T:
    """Call `fn` in a worker thread when it may query the database (the platform), else directly.

    Standalone there is no database to wait on, and a thread hop would only add latency.
    """
    if config.platform:
        return await run_in_threadpool(fn, config, *args)
    return fn(config, *args)


def authenticate(config: ServeConfig, authorization: str | None) -> Caller:
    """Check the `Authorization` header against the configured key or the platform's API keys.

    Raises:
        APIError: 401 when a key is needed and missing or wrong.
    """
    if not config.platform and config.api_key is None:
        return Caller()
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise _unauthorized("send your API key as `Authorization: Bearer <key>`")
    secret = secret.strip()
    if not config.platform:
        assert config.api_key is not None
        if not secrets.compare_digest(secret.encode(), config.api_key.encode()):
            raise _unauthorized("invalid API key")
        return Caller()
    from shared.auth import user_for_api_key

    with session_scope() as session:
        user = user_for_api_key(session, secret)
        if user is None:
            raise _unauthorized("invalid API key")
        return Caller(user_id=user.id)


def _unauthorized(message: str) -> APIError:
    return APIError(401, message, type_="authentication_error", code="invalid_api_key")


def resolve_model(config: ServeConfig, caller: Caller, name: str) -> Target:
    """The model `name` means for `caller`: the base, a local adapter, or the caller's own `ft:` model.

    Raises:
        APIError: 404 naming `model` for unknown names and for other users' models alike.
    """
    if name == config.base_name:
        return Target(name)
    if name in config.adapters:
        return Target(name, config.adapters[name])
    if config.platform and caller.user_id is not None:
        source = fine_tuned_source(caller.user_id, name)
        if source is not None:
            return Target(name, source)
    raise model_not_found(name)


def fine_tuned_source(user_id: str, name: str) -> str | None:
    """Where the model `name` is stored if it is one of `user_id`'s succeeded fine-tuned models, else None."""
    with session_scope() as session:
        job = session.scalar(
            select(Job).where(
                Job.fine_tuned_model == name,
                Job.user_id == user_id,
                Job.status == JobStatus.SUCCEEDED.value,
            )
        )
        source = job.result.get("model") if job is not None else None
    return source if isinstance(source, str) and source else None


def list_models(config: ServeConfig, caller: Caller) -> list[ModelCard]:
    """The models `caller` may address."""
    cards = [ModelCard(id=config.base_name, created=0, owned_by="tuneflow")]
    cards += [ModelCard(id=name, created=0, owned_by="tuneflow") for name in config.adapters]
    if config.platform and caller.user_id is not None:
        with session_scope() as session:
            jobs = session.scalars(
                select(Job)
                .where(
                    Job.user_id == caller.user_id,
                    Job.status == JobStatus.SUCCEEDED.value,
                    Job.fine_tuned_model.is_not(None),
                )
                .order_by(Job.created_at)
            ).all()
            cards += [
                ModelCard(id=job.fine_tuned_model or "", created=int(job.created_at.timestamp()), owned_by=job.user_id)
                for job in jobs
            ]
    return cards
