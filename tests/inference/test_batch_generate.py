"""`inference.generate`: a stored requests JSONL in, seeded responses out, equal to what the server answers."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from shared.queue import TaskName, send_task
from shared.schemas import TaskPayload
from tests.inference.adapters import train_fixed_reply_adapter
from tests.inference.conftest import add_fine_tuned_job, running

REQUESTS = [
    {"id": "story", "messages": [{"role": "user", "content": "Tell me a story about a fox."}]},
    {
        "id": "kind",
        "messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "What is rain?"}],
    },
    {"id": "plain", "prompt": "Once upon a time there was a"},
    {"id": "too-long", "prompt": "word " * 2100},  # past the tiny model's 2048-token context
]
SAMPLING = {"temperature": 0.9, "top_p": 0.9, "seed": 11, "max_new_tokens": 12}


@pytest.fixture(scope="module")
def apple_adapter(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter on the tiny model that answers `hi` with `apple`."""
    return train_fixed_reply_adapter(tiny_model_dir, "apple", tmp_path_factory.mktemp("apple"), prompts=["hi"])


def _put_requests(key: str, requests: list[dict]) -> None:
    from shared.storage import get_store, put_bytes

    put_bytes(get_store(), key, "".join(json.dumps(r) + "\n" for r in requests).encode())


def _generate(job_id: str, user_id: str = "local", **config: object) -> list[dict]:
    from shared.storage import get_bytes, get_store

    result = send_task(TaskName.INFERENCE_GENERATE, TaskPayload(job_id=job_id, user_id=user_id, config=config)).get()
    assert result["key"] == f"users/{user_id}/jobs/{job_id}/generate/responses.jsonl"
    return [json.loads(line) for line in get_bytes(get_store(), result["key"]).decode().splitlines()]


def test_responses_are_seeded_and_equal_the_servers_answers(embedded: Path, tiny_model_dir: Path) -> None:
    from services.inference.app import create_app
    from services.inference.config import ServeConfig

    key = "users/local/jobs/gen-1/requests.jsonl"
    _put_requests(key, REQUESTS)
    model = str(tiny_model_dir)

    first = _generate("gen-1", model=model, requests_key=key, **SAMPLING)
    assert _generate("gen-2", model=model, requests_key=key, **SAMPLING) == first
    reseeded = _generate("gen-3", model=model, requests_key=key, **{**SAMPLING, "seed": 12})

    assert [r["id"] for r in first] == [r["id"] for r in REQUESTS]
    assert [r["text"] for r in reseeded[:3]] != [r["text"] for r in first[:3]]
    too_long = first[3]
    assert (too_long["text"], too_long["finish_reason"]) == ("", "error")
    assert "exceed the model's 2048-token context" in too_long["error"]
    sampling = {"temperature": 0.9, "top_p": 0.9, "max_tokens": 12}
    with running(create_app(ServeConfig(model=model, served_model_name="tiny"))) as served:
        for index, (request, response) in enumerate(zip(REQUESTS[:3], first, strict=False)):
            body = {"model": "tiny", "seed": 11 + index, **sampling}
            if "messages" in request:
                reply = httpx.post(f"{served.url}/v1/chat/completions", json={**body, "messages": request["messages"]})
                choice = reply.json()["choices"][0]
                text = choice["message"]["content"]
            else:
                reply = httpx.post(f"{served.url}/v1/completions", json={**body, "prompt": request["prompt"]})
                choice = reply.json()["choices"][0]
                text = choice["text"]
            assert (text, choice["finish_reason"]) == (response["text"], response["finish_reason"]), request["id"]


def test_a_users_fine_tuned_adapter_generates_by_its_ft_name(
    embedded: Path, tiny_model_dir: Path, apple_adapter: Path
) -> None:
    name = add_fine_tuned_job("alice", "ftjob-alice1", apple_adapter)
    key = "users/alice/jobs/gen-a/requests.jsonl"
    _put_requests(key, [{"id": "q", "messages": [{"role": "user", "content": "hi"}]}])

    with_adapter = _generate("gen-a", "alice", model=str(tiny_model_dir), adapter=name, requests_key=key)
    base = _generate("gen-b", "alice", model=str(tiny_model_dir), requests_key=key, max_new_tokens=8)

    assert with_adapter == [{"id": "q", "text": "apple", "finish_reason": "stop", "error": None}]
    assert base[0]["text"] != "apple"


def _job_error(job_id: str) -> dict:
    from shared.db import Job, session_scope

    with session_scope() as session:
        return session.get(Job, job_id).error


@pytest.mark.parametrize(
    ("field", "config"),
    [
        ("adapter", {"adapter": "ft:tiny:alice:ftjob-alice1"}),  # alice's model, asked for by bob
        ("model", {"model": "store://users/alice/jobs/ftjob-alice1/final/"}),
        ("requests_key", {"requests_key": "users/alice/jobs/gen-a/requests.jsonl"}),
        ("requests_key", {"requests_key": "users/bob/../alice/jobs/gen-a/requests.jsonl"}),
    ],
)
def test_other_users_models_and_keys_are_refused_naming_the_field(
    embedded: Path, tiny_model_dir: Path, apple_adapter: Path, field: str, config: dict
) -> None:
    from shared.db import session_scope
    from shared.db.jobs import create_job, ensure_user
    from shared.schemas import JobKind

    add_fine_tuned_job("alice", "ftjob-alice1", apple_adapter)
    _put_requests("users/alice/jobs/gen-a/requests.jsonl", [{"id": "q", "prompt": "hi"}])
    _put_requests("users/bob/jobs/mine/requests.jsonl", [{"id": "q", "prompt": "hi"}])
    with session_scope() as session:
        ensure_user(session, "bob")
        job_id = create_job(session, user_id="bob", kind=JobKind.DATA, config={}).id
    asked = {"model": str(tiny_model_dir), "requests_key": "users/bob/jobs/mine/requests.jsonl", **config}

    with pytest.raises(PermissionError, match=f"^{field}: "):
        send_task(TaskName.INFERENCE_GENERATE, TaskPayload(job_id=job_id, user_id="bob", config=asked))

    error = _job_error(job_id)
    assert (error["code"], error["param"]) == ("permission_denied", field)


def test_progress_is_reported_and_stops_generation_when_asked(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.inference import batch
    from shared.schemas.generation import GenerateConfig, GenerationRequest

    monkeypatch.setattr(batch, "PROGRESS_INTERVAL_S", 0.0)  # report between every two decode steps
    reports: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> bool:
        reports.append((done, total))
        return len(reports) < 3

    config = GenerateConfig(model=str(tiny_model_dir), requests_key="unused", max_new_tokens=500, batch_size=1)
    requests = [GenerationRequest(id=str(i), prompt="Once upon a time") for i in range(3)]
    with pytest.raises(batch.GenerationCancelled, match="stopped after 0 of 3 responses"):
        batch.generate_responses(config, requests, model_source=str(tiny_model_dir), progress=progress)
    assert reports == [(0, 3)] * 3


def test_a_cancelled_job_generates_nothing(embedded: Path, tiny_model_dir: Path) -> None:
    from shared.db import Job, session_scope
    from shared.db.jobs import create_job, ensure_user, request_cancel
    from shared.schemas import JobKind
    from shared.storage import get_store

    with session_scope() as session:
        ensure_user(session, "local")
        job_id = create_job(session, user_id="local", kind=JobKind.DATA, config={}).id
    request_cancel(job_id)
    key = f"users/local/jobs/{job_id}/requests.jsonl"
    _put_requests(key, [{"id": "q", "prompt": "hi"}])

    with pytest.raises(RuntimeError, match="cancelled"):
        _generate(job_id, model=str(tiny_model_dir), requests_key=key)

    with session_scope() as session:
        assert session.get(Job, job_id).status == "cancelled"
    assert not list(get_store().list(f"users/local/jobs/{job_id}/generate/"))
