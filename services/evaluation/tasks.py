"""Celery tasks on the `evaluation` queue."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from shared.events import answer_ping
from shared.queue import Queue, TaskName


@shared_task(name=TaskName.EVALUATION_PING)
def ping(payload: dict[str, Any]) -> dict[str, Any]:
    """Health probe: records a 'pong' event for the payload's job id."""
    return answer_ping(Queue.EVALUATION, payload)
