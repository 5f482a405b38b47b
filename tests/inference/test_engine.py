"""The decode loop itself: rows joining and leaving a running batch decode exactly as they would alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.inference.config import ServeConfig
from services.inference.engine import TransformersEngine
from services.inference.metrics import Metrics
from services.inference.model_cache import BASE_GROUP, Target
from services.inference.sampling import SamplingParams
from services.inference.sequences import Row, Update

PROMPTS = ["The quick brown fox", "Once upon a time there was a", "Hi", "Adapters share one base"]


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> TransformersEngine:
    return TransformersEngine(ServeConfig(model=str(tiny_model_dir)), Metrics())


def _row(engine: TransformersEngine, prompt: str, max_tokens: int, target: Target | None = None, **params) -> Row:  # type: ignore[no-untyped-def]
    ids = engine.cache.base.tokenizer(prompt).input_ids
    sink: asyncio.Queue[Update] = asyncio.Queue()
    return Row(ids, SamplingParams(max_tokens, **params), target or Target("tiny"), BASE_GROUP, sink)


def _decode(engine: TransformersEngine, first: list[Row], joins: dict[int, list[Row]]) -> dict[int, str]:
    """Run `first`, handing `joins[k]` over at the k-th chance to join; return each row's text."""
    texts: dict[int, str] = {}
    chances = iter(range(10_000))

    def take(room: int, group: str, in_use: frozenset[str]) -> list[Row]:
        return joins.get(next(chances), [])[:room]

    def emit(updates: list[Update]) -> None:
        for update in updates:
            texts[id(update.row)] = texts.get(id(update.row), "") + update.text

    engine.run(first, take, lambda: None, emit)
    return texts


def test_rows_joining_and_leaving_decode_as_they_would_alone(engine: TransformersEngine) -> None:
    lengths = [12, 30, 5, 20]
    alone = []
    for prompt, n in zip(PROMPTS, lengths, strict=True):
        row = _row(engine, prompt, n)
        alone.append(_decode(engine, [row], {})[id(row)])
    rows = [_row(engine, prompt, n) for prompt, n in zip(PROMPTS, lengths, strict=True)]
    texts = _decode(engine, rows[:1], {1: rows[1:3], 7: rows[3:]})  # row 2 leaves before row 3 joins
    assert [texts[id(row)] for row in rows] == alone


def test_greedy_decoding_matches_plain_generate(engine: TransformersEngine, tiny_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = engine.cache.base.tokenizer
    row = _row(engine, PROMPTS[1], 16)
    with torch.inference_mode():
        ids = torch.tensor([row.prompt_ids])
        expected = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=16, do_sample=False)
    text = _decode(engine, [row], {})[id(row)]
    assert text == tokenizer.decode(expected[0, ids.shape[1] :], skip_special_tokens=True)


def test_a_mixed_batch_gives_each_row_its_adapter(engine: TransformersEngine, adapter_dirs: dict[str, Path]) -> None:
    chat = engine.cache.base.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    apple, banana = (Target(name, str(adapter_dirs[name])) for name in ("apple", "banana"))
    rows = [_row(engine, chat, 8, apple), _row(engine, chat, 8), _row(engine, chat, 8, banana)]
    texts = _decode(engine, rows, {})
    assert texts[id(rows[0])] == "apple" and texts[id(rows[2])] == "banana"
    assert texts[id(rows[1])] not in ("apple", "banana")


def test_seeded_sampling_repeats_whatever_shares_the_batch(engine: TransformersEngine) -> None:
    seeded = [_row(engine, PROMPTS[0], 10, temperature=1.0, seed=5) for _ in range(2)]
    first = _decode(engine, [seeded[0]], {})[id(seeded[0])]
    crowd = [_row(engine, p, 10, temperature=1.0) for p in PROMPTS]
    assert _decode(engine, [*crowd, seeded[1]], {})[id(seeded[1])] == first
