"""Shared fixtures of the evaluation tests: the tiny model loaded once, and small conversation sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core box they are 10x slower with 2."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny(tiny_model_dir: Path) -> tuple[Any, Any]:
    """(model, tokenizer) of the tiny Qwen2, in eval mode."""
    from services.evaluation.loading import load_for_evaluation

    return load_for_evaluation(str(tiny_model_dir))


@pytest.fixture(scope="session")
def tiny_llama(tiny_llama_dir: Path) -> tuple[Any, Any]:
    """(model, tokenizer) of the tiny Llama, in eval mode."""
    from services.evaluation.loading import load_for_evaluation

    return load_for_evaluation(str(tiny_llama_dir))


@pytest.fixture(params=["tiny", "tiny_llama"])
def each_arch(request: pytest.FixtureRequest) -> tuple[Any, Any]:
    """Both tiny architectures: batching, padding and logits_to_keep must hold for each."""
    return request.getfixturevalue(request.param)


def _reply(content: str) -> dict[str, str]:
    return {"role": "assistant", "content": content}


@pytest.fixture
def conversations() -> list[Any]:
    """Samples of different lengths: one multi-turn, one with a system prompt, one Chinese."""
    from services.evaluation.dataset import EvalSample

    return [
        EvalSample(
            [{"role": "user", "content": "What is the capital of France?"}], _reply("Paris is the capital of France.")
        ),
        EvalSample([{"role": "user", "content": "Hi"}], _reply("Hello! How can I help you today?")),
        EvalSample(
            [{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "Name a colour."}],
            _reply("Blue."),
        ),
        EvalSample(
            [
                {"role": "user", "content": "Count to three."},
                {"role": "assistant", "content": "One, two, three."},
                {"role": "user", "content": "Now backwards, please, and slowly."},
            ],
            _reply("Three... two... one."),
        ),
        EvalSample([{"role": "user", "content": "用一句话介绍北京。"}], _reply("北京是中国的首都。")),
    ]
