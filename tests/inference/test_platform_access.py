"""The platform: API keys from the shared database, and users' `ft:` models from the object store."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from openai import AuthenticationError, NotFoundError, OpenAI

from services.inference.app import create_app
from services.inference.config import ServeConfig
from tests.inference.conftest import Served, add_fine_tuned_job, running


def _add_user_with_model(user_id: str, adapter: Path, *, job_id: str) -> tuple[str, str]:
    """A user, an API key and a succeeded job whose model is in the store; returns the key and the model's name."""
    from shared.auth import create_api_key
    from shared.db import session_scope

    model = add_fine_tuned_job(user_id, job_id, adapter)
    with session_scope() as session:
        return create_api_key(session, user_id).secret, model


@pytest.fixture
def platform(
    embedded: Path, tiny_model_dir: Path, tiny_llama_dir: Path, adapter_dirs: dict[str, Path]
) -> Iterator[tuple[Served, dict]]:
    users = {
        "alice": _add_user_with_model("alice", adapter_dirs["apple"], job_id="ftjob-alice1"),
        "bob": _add_user_with_model("bob", adapter_dirs["banana"], job_id="ftjob-bob1"),
        # An exported model with weights of its own (here another tiny model) serves beside the base.
        "carol": _add_user_with_model("carol", tiny_llama_dir, job_id="ftjob-carol1"),
    }
    config = ServeConfig(model=str(tiny_model_dir), served_model_name="tiny", platform=True, batch_wait_ms=50)
    with running(create_app(config)) as served:
        yield served, users


def _client(served: Served, key: str) -> OpenAI:
    return OpenAI(base_url=f"{served.url}/v1", api_key=key, max_retries=0)


def _ask(client: OpenAI, model: str) -> str | None:
    messages = [{"role": "user", "content": "hi"}]
    reply = client.chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=0)
    return reply.choices[0].message.content


def test_users_get_their_own_adapters_concurrently_and_only_their_own(platform: tuple[Served, dict]) -> None:
    served, users = platform
    (alice_key, alice_model), (bob_key, bob_model) = users["alice"], users["bob"]
    alice, bob = _client(served, alice_key), _client(served, bob_key)

    assert {m.id for m in alice.models.list()} == {"tiny", alice_model}
    jobs = [(alice, alice_model), (bob, bob_model)] * 3
    with ThreadPoolExecutor(len(jobs)) as pool:
        answers = list(pool.map(lambda job: _ask(*job), jobs))
    assert answers == ["apple", "banana"] * 3

    with pytest.raises(NotFoundError) as theirs:
        _ask(alice, bob_model)
    with pytest.raises(NotFoundError) as nobodys:
        _ask(alice, "ft:tiny:bob:ftjob-nope")
    # Someone else's model is indistinguishable from one that does not exist.
    assert theirs.value.body["code"] == nobodys.value.body["code"] == "model_not_found"
    assert _ask(alice, "tiny") is not None


def test_an_exported_model_serves_beside_adapters_of_the_base(platform: tuple[Served, dict]) -> None:
    served, users = platform
    (alice_key, alice_model), (carol_key, carol_model) = users["alice"], users["carol"]
    jobs = [(_client(served, alice_key), alice_model), (_client(served, carol_key), carol_model)] * 2
    with ThreadPoolExecutor(len(jobs)) as pool:
        answers = list(pool.map(lambda job: _ask(*job), jobs))
    assert answers[0] == answers[2] == "apple"
    assert answers[1] is not None and answers[1] == answers[3]  # greedy, so the same both times


def test_requests_need_a_valid_key(platform: tuple[Served, dict]) -> None:
    served, _ = platform
    with pytest.raises(AuthenticationError):
        _ask(_client(served, "tf-not-a-key"), "tiny")
    response = httpx.get(f"{served.url}/v1/models")
    assert response.status_code == 401
    assert httpx.get(f"{served.url}/healthz").status_code == 200  # probes need no key


def test_standalone_api_key(tiny_model_dir: Path) -> None:
    config = ServeConfig(model=str(tiny_model_dir), served_model_name="tiny", api_key="s3cret-key")
    with running(create_app(config)) as served:
        with pytest.raises(AuthenticationError):
            _ask(_client(served, "wrong"), "tiny")
        assert _ask(_client(served, "s3cret-key"), "tiny") is not None
