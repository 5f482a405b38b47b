"""The official `openai` client against a real server: chat (streamed or not), models, tools, completions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from openai import NotFoundError, OpenAI

from services.inference.app import create_app
from services.inference.config import ServeConfig
from tests.inference.conftest import REPLIES, TOOLS, Served, running


@pytest.fixture(scope="module")
def served(tiny_model_dir: Path, adapter_dirs: dict[str, Path]) -> Iterator[Served]:
    # A long batch window makes concurrent requests reliably share a batch.
    config = ServeConfig(
        model=str(tiny_model_dir),
        served_model_name="tiny",
        adapters={name: str(path) for name, path in adapter_dirs.items()},
        batch_wait_ms=50,
        max_output_tokens=64,
        max_input_tokens=600,
    )
    with running(create_app(config)) as served:
        yield served


@pytest.fixture(scope="module")
def client(served: Served) -> OpenAI:
    return OpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)


def ask(client: OpenAI, model: str, text: str = "hi", **kwargs):  # type: ignore[no-untyped-def]
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}], **kwargs)


def test_lists_the_base_and_local_adapters(client: OpenAI) -> None:
    assert {m.id for m in client.models.list()} == {"tiny", *REPLIES}


def test_chat_completion_answers_with_the_adapter_and_counts_usage(client: OpenAI, tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    reply = ask(client, "apple", "What should I eat?", temperature=0)
    choice = reply.choices[0]
    assert choice.message.content == "apple" and choice.finish_reason == "stop"
    # The end-of-turn token ends the reply but is not part of it, so it is not counted.
    assert reply.usage.completion_tokens == len(AutoTokenizer.from_pretrained(tiny_model_dir)("apple").input_ids)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_chat_stream_ends_with_usage_and_done(client: OpenAI) -> None:
    chunks = list(ask(client, "banana", stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "banana"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_base_model_stops_at_max_tokens(client: OpenAI) -> None:
    reply = ask(client, "tiny", max_tokens=5, temperature=0.7, seed=3, n=2)
    assert [c.finish_reason for c in reply.choices] == ["length", "length"]
    assert reply.usage.completion_tokens == 10


def test_tool_calls_come_back_as_openai_tool_calls(client: OpenAI) -> None:
    reply = ask(client, "tools", "weather?", tools=TOOLS, temperature=0)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}


def test_tool_calls_stream(client: OpenAI) -> None:
    chunks = list(ask(client, "tools", "weather?", tools=TOOLS, stream=True))
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert [(tc.index, tc.function.name) for tc in calls] == [(0, "get_weather")]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert not "".join(c.choices[0].delta.content or "" for c in chunks)


def test_with_tool_choice_none_a_tool_call_stays_text(client: OpenAI) -> None:
    reply = ask(client, "tools", "weather?", tools=TOOLS, tool_choice="none", temperature=0)
    assert reply.choices[0].message.content is not None and not reply.choices[0].message.tool_calls


def test_completions_for_several_prompts_and_streaming(client: OpenAI) -> None:
    reply = client.completions.create(model="tiny", prompt=["one", "two"], max_tokens=4, n=2)
    assert len(reply.choices) == 4 and reply.usage.completion_tokens == 16
    stream = client.completions.create(model="tiny", prompt="one", max_tokens=4, stream=True)
    texts = [c.choices[0].text for c in stream]
    assert "".join(texts) == reply.choices[0].text  # greedy by the model's generation config


def test_adapters_answer_concurrently_with_their_own_behaviour(served: Served, client: OpenAI) -> None:
    names = ["apple", "banana", "tiny", "apple", "banana"] * 2
    with ThreadPoolExecutor(len(names)) as pool:
        replies = list(pool.map(lambda name: ask(client, name, max_tokens=8, temperature=0), names))
    for name, reply in zip(names, replies, strict=True):
        if name != "tiny":
            assert reply.choices[0].message.content == name
    metrics = httpx.get(f"{served.url}/metrics").text
    assert _metric(metrics, "tuneflow_inference_batch_size_sum") > _metric(
        metrics, "tuneflow_inference_batch_size_count"
    )


def test_generate_continues_text(served: Served) -> None:
    response = httpx.post(f"{served.url}/generate", json={"text": "Once upon", "max_tokens": 5})
    assert response.status_code == 200 and isinstance(response.json()["response"], str)


def test_unknown_model_is_404(client: OpenAI) -> None:
    with pytest.raises(NotFoundError) as caught:
        ask(client, "nope")
    assert caught.value.body["param"] == "model"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ("{not json", 400, "body"),
        ("[1, 2]", 400, "body"),
        ('{"model": "tiny"}', 400, "messages"),
        ('{"model": "tiny", "messages": []}', 400, "messages"),
        (
            '{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}',
            400,
            "temperature",
        ),
        ('{"model": "tiny", "messages": [{"role": "wizard", "content": "hi"}]}', 400, "messages[0].role"),
        ('{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000}', 400, "max_tokens"),
        ('{"model": "tiny", "messages": [{"role": "user", "content": "' + "word " * 800 + '"}]}', 400, "messages"),
        ('{"model": "ghost", "messages": [{"role": "user", "content": "hi"}]}', 404, "model"),
        ('{"model": 7, "messages": [{"role": "user", "content": "hi"}]}', 400, "model"),
    ],
)
def test_malformed_requests_get_4xx_naming_the_field(served: Served, body: str, status: int, param: str) -> None:
    response = httpx.post(
        f"{served.url}/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    assert response.json()["error"]["param"] == param
    assert httpx.get(f"{served.url}/healthz").status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "tiny", "prompt": ""}, "prompt"),
        ({"model": "tiny", "prompt": []}, "prompt"),
        ({"model": "tiny", "prompt": ["x"] * 30, "n": 16}, "n"),  # more sequences than the queue holds
        ({"model": "tiny", "prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ],
)
def test_bad_completion_requests_name_the_field(served: Served, body: dict, param: str) -> None:
    response = httpx.post(f"{served.url}/v1/completions", json=body)
    assert response.status_code == 400 and response.json()["error"]["param"] == param


def test_generate_refuses_empty_text(served: Served) -> None:
    response = httpx.post(f"{served.url}/generate", json={"text": ""})
    assert response.status_code == 400 and response.json()["error"]["param"] == "text"


def _metric(text: str, name: str) -> float:
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))
