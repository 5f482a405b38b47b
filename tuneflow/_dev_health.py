"""Deciding when the started processes are ready: HTTP health endpoints, Celery pings, open ports."""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx
from celery import Celery

from ._dev_procs import is_alive, port_open
from ._dev_state import Health, ProcessRecord

_POLL_S = 0.5


def wait_healthy(records: Sequence[ProcessRecord], broker_url: str, timeout_s: float) -> dict[str, str]:
    """Wait until every process is healthy; returns `{name: why}` for those that are not (empty: all are).

    Stops early when a process exits, since it will not become healthy any more.
    """
    pending = {r.spec.name: r for r in records}
    why: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    # A bare app is enough to ping: control messages need only the broker, not the task modules.
    control = Celery("tuneflow-dev", broker=broker_url)
    try:
        while pending:
            dead = [name for name, r in pending.items() if not is_alive(r)]
            if dead:
                return {name: "exited" for name in dead}
            why = _check(list(pending.values()), control)
            for name in [n for n in pending if n not in why]:
                del pending[name]
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(_POLL_S)
    finally:
        control.close()
    return {name: why[name] for name in pending}


def _check(records: list[ProcessRecord], control: Celery) -> dict[str, str]:
    """One round of checks; `{name: why}` for the records that are not healthy yet."""
    why: dict[str, str] = {}
    nodes = {r.spec.node: r.spec.name for r in records if r.spec.health is Health.CELERY}
    if nodes:
        answered = _ping_workers(control, list(nodes))
        why.update({name: "no answer to a Celery ping" for node, name in nodes.items() if node not in answered})
    for record in records:
        if record.spec.health is Health.HTTP:
            problem = _http_problem(record.spec.url)
            if problem:
                why[record.spec.name] = problem
        elif record.spec.health is Health.TCP and not port_open(record.spec.port or 0):
            why[record.spec.name] = f"nothing listens on port {record.spec.port}"
    return why


def _ping_workers(control: Celery, nodes: list[str]) -> set[str]:
    try:
        replies = control.control.ping(destination=nodes, timeout=1.0)
    except Exception:  # the broker itself may still be starting; the next round asks again
        return set()
    return {node for reply in replies for node in reply}


def _http_problem(url: str) -> str:
    try:
        response = httpx.get(f"{url}/healthz", timeout=2.0)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__} from {url}/healthz"
    if response.status_code != 200:
        return f"{url}/healthz answered {response.status_code}: {response.text[:300]}"
    return ""
