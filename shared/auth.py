"""API keys: generated once, stored only as a hash, looked up by hash."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import ApiKey, User, utcnow

KEY_PREFIX = "tf-"


@dataclass(frozen=True)
class NewApiKey:
    """A freshly minted key: `secret` is shown to the user once and never stored."""

    id: str
    secret: str
    prefix: str


def hash_api_key(secret: str) -> str:
    """The stored form of a key (keys are long random strings, so a fast hash is enough)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(session: Session, user_id: str, name: str = "") -> NewApiKey:
    """Mint a key for `user_id` and store its hash."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = NewApiKey(id=f"key-{uuid.uuid4().hex[:16]}", secret=secret, prefix=secret[:10])
    session.add(ApiKey(id=key.id, user_id=user_id, prefix=key.prefix, key_hash=hash_api_key(secret), name=name))
    session.flush()
    return key


def user_for_api_key(session: Session, secret: str) -> User | None:
    """The owner of a valid, unrevoked key (and mark it used), or None."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_api_key(secret), ApiKey.revoked.is_(False)))
    if row is None:
        return None
    row.last_used_at = utcnow()
    return session.get(User, row.user_id)
