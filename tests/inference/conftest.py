"""Fixtures for the inference server: trained tiny adapters and a real uvicorn server on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from tests.inference.adapters import train_fixed_reply_adapter
from tests.infra import Served, one_torch_thread, serve_in_thread

TOOL_REPLY = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
REPLIES = {"apple": "apple", "banana": "banana", "tools": TOOL_REPLY}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
# The tool-call reply is longer and its prompt carries the tool list: it needs more steps to stick,
# so it learns only the prompt its tests send.
TRAINING: dict[str, dict[str, Any]] = {
    "apple": {},
    "banana": {},
    "tools": {"tools": TOOLS, "steps": 80, "prompts": ["weather?"]},
}


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Every inference test runs torch on one thread (two on two shared, busy cores are ~10x slower)."""
    with one_torch_thread():
        yield


@pytest.fixture(scope="session")
def adapter_dirs(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """LoRA adapters on the tiny model answering every prompt with `REPLIES[name]`."""
    root = tmp_path_factory.mktemp("adapters")
    return {
        name: train_fixed_reply_adapter(tiny_model_dir, reply, root / name, **TRAINING[name])
        for name, reply in REPLIES.items()
    }


def running(app: Any) -> AbstractContextManager[Served]:
    """Serve `app` with uvicorn in a thread; shut it down gracefully afterwards."""
    return serve_in_thread(app, timeout_s=60)


def add_fine_tuned_job(user_id: str, job_id: str, model: Path) -> str:
    """A succeeded training job of `user_id` whose model (an adapter or a whole model) is in the store.

    Returns its `ft:` name.
    """
    from shared.db import Job, session_scope
    from shared.db.jobs import ensure_user
    from shared.storage import get_store, upload_dir

    prefix = f"users/{user_id}/jobs/{job_id}/final/"
    upload_dir(get_store(), prefix, model)
    name = f"ft:tiny:{user_id}:{job_id}"
    with session_scope() as session:
        ensure_user(session, user_id)
        session.add(
            Job(
                id=job_id,
                user_id=user_id,
                kind="training",
                status="succeeded",
                model="tiny",
                fine_tuned_model=name,
                result={"model": f"store://{prefix}"},
            )
        )
    return name
