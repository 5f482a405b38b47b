"""Operations under load: a full queue answers 429, a vanished client frees its slot, shutdown drains."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from services.inference.app import create_app
from services.inference.config import ServeConfig
from tests.inference.conftest import running

CHAT = "/v1/chat/completions"


def _body(max_tokens: int, stream: bool = False) -> dict:
    return {
        "model": "tiny",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": max_tokens,
        "stream": stream,
    }


def _metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def _eventually(check, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_full_queue_answers_429_and_the_server_keeps_serving(tiny_model_dir: Path) -> None:
    config = ServeConfig(model=str(tiny_model_dir), served_model_name="tiny", max_batch_size=1, max_queue=1)
    with running(create_app(config)) as served, ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: httpx.post(f"{served.url}{CHAT}", json=_body(80), timeout=60), range(6)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses[0] == 200 and statuses[-1] == 429
        refused = next(r for r in responses if r.status_code == 429)
        assert refused.headers["retry-after"] == "1" and refused.json()["error"]["code"] == "queue_full"
        assert _metric(served.url, "tuneflow_inference_rejected_total") >= 1
        assert httpx.post(f"{served.url}{CHAT}", json=_body(4), timeout=60).status_code == 200


def test_a_client_that_goes_away_frees_its_slot(tiny_model_dir: Path) -> None:
    config = ServeConfig(model=str(tiny_model_dir), served_model_name="tiny", max_output_tokens=1500)
    with running(create_app(config)) as served:
        with httpx.stream("POST", f"{served.url}{CHAT}", json=_body(1500, stream=True), timeout=60) as response:
            # The role chunk comes first; wait for generated text, so the row is surely running.
            for line in response.iter_lines():
                if line.startswith("data: ") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                    break
        assert _eventually(lambda: _metric(served.url, "tuneflow_inference_cancelled_total") == 1)
        assert _eventually(lambda: _metric(served.url, "tuneflow_inference_running_sequences") == 0)
        made = _metric(served.url, "tuneflow_inference_generated_tokens_total")
        assert made < 1500

        with contextlib.suppress(httpx.ReadTimeout):  # a non-streaming client that times out is dropped too
            httpx.post(f"{served.url}{CHAT}", json=_body(1500), timeout=0.5)
        assert _eventually(lambda: _metric(served.url, "tuneflow_inference_cancelled_total") == 2)
        assert _eventually(lambda: _metric(served.url, "tuneflow_inference_running_sequences") == 0)
        assert _metric(served.url, "tuneflow_inference_generated_tokens_total") - made < 1500


def test_shutdown_finishes_requests_in_flight(tiny_model_dir: Path) -> None:
    config = ServeConfig(model=str(tiny_model_dir), served_model_name="tiny", max_output_tokens=300)
    with running(create_app(config)) as served:
        result: dict[str, httpx.Response] = {}
        thread = threading.Thread(
            target=lambda: result.setdefault("r", httpx.post(f"{served.url}{CHAT}", json=_body(300), timeout=60))
        )
        thread.start()
        assert _eventually(lambda: _metric(served.url, "tuneflow_inference_running_sequences") == 1)
        served.uvicorn.should_exit = True
        thread.join(60)
    body = result["r"].json()
    assert result["r"].status_code == 200
    assert body["choices"][0]["finish_reason"] == "stop" or body["usage"]["completion_tokens"] == 300


def test_metrics_expose_throughput_queue_and_latency(tiny_model_dir: Path) -> None:
    config = ServeConfig(model=str(tiny_model_dir), served_model_name="tiny")
    with running(create_app(config)) as served:
        assert httpx.post(f"{served.url}/generate", json={"text": "hi", "max_tokens": 4}).status_code == 200
        text = httpx.get(f"{served.url}/metrics").text
    for name in (
        'tuneflow_inference_requests_total{path="/generate",status="200"} 1.0',
        "tuneflow_inference_queue_depth",
        "tuneflow_inference_tokens_per_second",
        'tuneflow_inference_request_seconds_bucket{le="0.01",path="/generate"}',
        "tuneflow_inference_time_to_first_token_seconds_count 1.0",
    ):
        assert name in text


def test_adapters_beyond_the_cache_take_turns(tiny_model_dir: Path, adapter_dirs: dict[str, Path]) -> None:
    adapters = {name: str(adapter_dirs[name]) for name in ("apple", "banana")}
    config = ServeConfig(model=str(tiny_model_dir), served_model_name="tiny", adapters=adapters, adapter_cache=1)
    names = ["apple", "banana"] * 3

    def ask(name: str) -> str:
        body = {**_body(8), "model": name, "temperature": 0}
        return httpx.post(f"{served.url}{CHAT}", json=body, timeout=60).json()["choices"][0]["message"]["content"]

    with running(create_app(config)) as served, ThreadPoolExecutor(len(names)) as pool:
        assert list(pool.map(ask, names)) == names
