"""Reachability checks for the stores the platform depends on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from shared.settings import Mode, get_settings


def _database() -> None:
    from shared.db import get_engine

    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))


def _broker() -> None:
    if get_settings().mode is Mode.EMBEDDED:
        return
    import redis

    redis.Redis.from_url(get_settings().broker_url, socket_timeout=2).ping()


def _storage() -> None:
    from shared.storage import get_store

    list(get_store().list("health/"))


CHECKS: dict[str, Callable[[], None]] = {"database": _database, "broker": _broker, "storage": _storage}


def check_all() -> dict[str, dict[str, Any]]:
    """Run every check; each result is `{ok, error}`."""
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = {"ok": True}
        except Exception as exc:  # a health check reports, it never raises
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return results
