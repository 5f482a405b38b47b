"""The `events` queue consumer: every service's events end up in the database here."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from shared.db import session_scope
from shared.queue import TaskName
from shared.schemas import Event

from .recorder import record_event


@shared_task(name=TaskName.EVENTS_RECORD)
def record(payload: dict[str, Any]) -> bool:
    """Validate and store one event; True if it was new."""
    event = Event.model_validate(payload)
    with session_scope() as session:
        return record_event(session, event)
