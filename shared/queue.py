"""The Celery app factory, the queues, and the one table of task names.

Task names are `<queue>.<verb>`, so the name alone routes a task to its service's queue. Services call
each other only through `send_task(name, payload)`; in embedded mode the same call runs the task
in-process (Celery eager), so there is no second code path.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from celery import Celery
from celery.result import AsyncResult, EagerResult
from pydantic import BaseModel

from .settings import Mode, Settings, get_settings


class Queue(StrEnum):
    """One queue per service, plus `events` consumed by the gateway."""

    DATA = "data"
    TRAINING = "training"
    EVALUATION = "evaluation"
    EXPORT = "export"
    INFERENCE = "inference"
    EVENTS = "events"


class TaskName(StrEnum):
    """Every task in the platform. The part before the dot is the queue."""

    EVENTS_RECORD = "events.record"
    DATA_PING = "data.ping"
    DATA_VALIDATE = "data.validate"
    DATA_CLEAN = "data.clean"
    DATA_PREPARE = "data.prepare"
    DATA_PLAN_PARAPHRASES = "data.plan_paraphrases"
    TRAINING_PING = "training.ping"
    TRAINING_RUN = "training.run"
    EVALUATION_PING = "evaluation.ping"
    EVALUATION_RUN = "evaluation.run"
    EXPORT_PING = "export.ping"
    EXPORT_RUN = "export.run"
    INFERENCE_PING = "inference.ping"
    INFERENCE_GENERATE = "inference.generate"


# Where each queue's tasks are defined. Strings, so `shared` never imports a service.
TASK_MODULES: dict[Queue, str] = {
    Queue.DATA: "services.data.tasks",
    Queue.TRAINING: "services.training.tasks",
    Queue.EVALUATION: "services.evaluation.tasks",
    Queue.EXPORT: "services.export.tasks",
    Queue.INFERENCE: "services.inference.tasks",
    Queue.EVENTS: "services.gateway.events",
}


def queue_for(task_name: str) -> Queue:
    """The queue a task name routes to."""
    return Queue(task_name.split(".", 1)[0])


def _route(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **_: Any) -> dict[str, str]:
    return {"queue": queue_for(name).value}


def create_celery_app(settings: Settings, queues: list[Queue] | None = None) -> Celery:
    """Build the Celery app; `queues` limits which services' task modules are imported (default: all)."""
    modules = [TASK_MODULES[q] for q in (queues or list(Queue))]
    embedded = settings.mode is Mode.EMBEDDED
    app = Celery(
        "tuneflow",
        broker="memory://" if embedded else settings.broker_url,
        backend="cache+memory://" if embedded else (settings.result_backend or settings.broker_url),
        include=modules,
    )
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,  # tasks are idempotent on job id, so redelivery after a crash is safe
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # long jobs: never hoard messages another worker could run
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        result_backend_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        task_routes=(_route,),
        task_default_queue=Queue.EVENTS.value,
        task_always_eager=embedded,
        task_eager_propagates=embedded,
        result_expires=24 * 3600,
        worker_hijack_root_logger=False,
        task_track_started=True,
    )
    if embedded:
        app.loader.import_default_modules()
    return app


_app: Celery | None = None


def get_celery_app() -> Celery:
    """The process-wide app for the current settings (all task modules)."""
    global _app
    if _app is None:
        _app = create_celery_app(get_settings())
        _app.set_default()
    return _app


def set_celery_app(app: Celery) -> None:
    """Make `app` the process-wide app (worker entry points and tests)."""
    global _app
    _app = app
    app.set_default()


def send_chain(steps: Sequence[tuple[TaskName | str, BaseModel | dict[str, Any]]]) -> AsyncResult | EagerResult:
    """Run tasks one after another, each with its own payload (immutable signatures: no result passing).

    A later step finds what an earlier one wrote under the job's deterministic object prefix.
    """
    from celery import chain

    app = get_celery_app()
    sigs = []
    for name, payload in steps:
        body = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
        sigs.append(app.signature(str(name), args=[body], queue=queue_for(str(name)).value, immutable=True))
    workflow = chain(*sigs)
    if app.conf.task_always_eager:
        return workflow.apply(throw=True)
    return workflow.apply_async()


def send_task(name: TaskName | str, payload: BaseModel | dict[str, Any]) -> AsyncResult | EagerResult:
    """Call a task by name with one JSON payload: queued in distributed mode, run inline when embedded."""
    app = get_celery_app()
    body = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    name = str(name)
    if app.conf.task_always_eager:
        return app.tasks[name].apply(args=[body], throw=True)
    return app.send_task(name, args=[body], queue=queue_for(name).value)
