"""A corpus of broken files: exactly one precise report entry per fault, and nothing else dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.data.prepare import prepare_dataset
from services.data.validation import DataValidationError
from shared.schemas.datasets import PrepareConfig
from shared.storage.local import LocalObjectStore

GOOD_CALL = json.dumps({"name": "lookup", "arguments": {"q": "tea"}})
TOOLS = json.dumps([{"name": "lookup", "description": "Search", "parameters": {"type": "object", "properties": {}}}])


def _chat(*turns: tuple[str, str], tools: str | None = TOOLS) -> str:
    record: dict = {"conversations": [{"from": r, "value": v} for r, v in turns]}
    if tools is not None:
        record["tools"] = tools
    return json.dumps(record)


def _lines(*lines: str | bytes) -> bytes:
    return b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)


# file name -> (content, number of valid records)
CORPUS: dict[str, tuple[bytes, int]] = {
    "alpaca.jsonl": (
        _lines(
            '{"instruction": "Say hi", "output": "Hi!"}',
            '{"instruction": "Broken", "output": ',
            b'{"instruction": "caf\xe9", "output": "x"}',
            "[1, 2]",
            '{"instruction": "No answer"}',
            '{"instruction": "   ", "output": "y"}',
            '{"instruction": "Count", "output": 42}',
            '{"instruction": "Go on", "output": "ok", "history": [["only a prompt"]]}',
            '{"instruction": "Name a fruit", "output": "Apple."}',
            '{"instruction": "Say hi", "output": "Hi!"}',
            json.dumps({"instruction": "Recite", "output": "lorem ipsum " * 400}),
            '{"instruction": "Hi", "output": "Hello.", "system": ["not", "text"]}',
        ),
        2,
    ),
    "chat.jsonl": (
        _lines(
            _chat(
                ("human", "Find tea"), ("function_call", GOOD_CALL), ("observation", '{"hits": 3}'), ("gpt", "3 hits.")
            ),
            _chat(("human", "Hello"), ("bot", "Hi")),
            _chat(("gpt", "I start"), ("human", "Odd")),
            _chat(("human", "Question one"), ("gpt", "Answer"), ("human", "Dangling")),
            _chat(("human", "Find tea"), ("function_call", "{name: lookup}"), ("observation", "{}"), ("gpt", "Done")),
            _chat(("human", "Find tea"), ("gpt", "Sure"), tools="[{broken"),
            json.dumps({"conversations": [{"from": "human", "value": 7}, {"from": "gpt", "value": "Seven"}]}),
            json.dumps({"conversations": []}),
            _chat(("human", "Thanks"), ("gpt", "You are welcome."), tools=None),
        ),
        2,
    ),
    "openai.jsonl": (
        _lines(
            json.dumps({"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}),
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": "Weather?"},
                        {
                            "role": "assistant",
                            "tool_calls": [{"type": "function", "function": {"name": "w", "arguments": "{oops"}}],
                        },
                        {"role": "tool", "content": "sunny"},
                        {"role": "assistant", "content": "Sunny."},
                    ]
                }
            ),
            json.dumps(
                {"messages": [{"role": "wizard", "content": "Abracadabra"}, {"role": "assistant", "content": "?"}]}
            ),
        ),
        1,
    ),
    "table.csv": (
        b"instruction,input,output\nTranslate,bonjour,hello\nSummarise,long text,\nCapitalise,paris,Paris\n",
        2,
    ),
    "array.json": (json.dumps([{"instruction": "Sum", "output": "3"}, {"output": "orphan answer"}]).encode(), 1),
    "truncated.json": (b'[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c", \n', 0),
    "turns.jsonl": (
        _lines(
            json.dumps(
                {
                    "conversations": [
                        {"system": "Be kind.", "input": "Hi", "output": "Hello"},
                        {"input": "Bye", "output": "Bye!"},
                    ]
                }
            ),
            json.dumps({"conversations": [{"input": "Hi", "output": "Hello"}, {"input": "And?"}]}),
        ),
        1,
    ),
}
# (file, line, record index, field, code): one per fault, nothing more.
EXPECTED = {
    ("alpaca.jsonl", 2, None, None, "invalid_json"),
    ("alpaca.jsonl", 3, None, None, "invalid_utf8"),
    ("alpaca.jsonl", 4, None, None, "wrong_type"),
    ("alpaca.jsonl", 5, None, "output", "missing_field"),
    ("alpaca.jsonl", 6, None, "instruction", "empty_field"),
    ("alpaca.jsonl", 7, None, "output", "wrong_type"),
    ("alpaca.jsonl", 8, None, "history[0]", "wrong_type"),
    ("alpaca.jsonl", 10, None, None, "exact_duplicate"),
    ("alpaca.jsonl", 11, None, None, "too_long"),
    ("alpaca.jsonl", 12, None, "system", "wrong_type"),
    ("chat.jsonl", 2, None, "conversations[1].from", "unknown_role"),
    ("chat.jsonl", 3, None, "conversations[0].from", "role_order"),
    ("chat.jsonl", 4, None, "conversations[2].from", "role_order"),
    ("chat.jsonl", 5, None, "conversations[1].value", "invalid_tool_call"),
    ("chat.jsonl", 6, None, "tools", "invalid_tools"),
    ("chat.jsonl", 7, None, "conversations[0].value", "wrong_type"),
    ("chat.jsonl", 8, None, "conversations", "empty_field"),
    ("openai.jsonl", 2, None, "messages[1].tool_calls[0].arguments", "invalid_tool_call"),
    ("openai.jsonl", 3, None, "messages[0].role", "unknown_role"),
    ("table.csv", 3, None, "output", "empty_field"),
    ("array.json", None, 1, "instruction", "missing_field"),
    ("truncated.json", 4, None, None, "invalid_json"),
    ("turns.jsonl", 2, None, "conversations[1].output", "missing_field"),
}


@pytest.fixture
def corpus(tmp_path: Path) -> list[str]:
    paths = []
    for name, (content, _) in CORPUS.items():
        path = tmp_path / name
        path.write_bytes(content)
        paths.append(str(path))
    return paths


def _config(model: Path, corpus: list[str], **kwargs: object) -> PrepareConfig:
    return PrepareConfig(model_name_or_path=str(model), dataset=corpus, cutoff_len=1024, **kwargs)


def test_every_fault_is_reported_once_and_nothing_else_dropped(
    corpus: list[str], tiny_model_dir: Path, store: LocalObjectStore
) -> None:
    manifest = prepare_dataset(_config(tiny_model_dir, corpus), store=store, user_id="alice")
    report = manifest.report

    found = [(p.file, p.line, p.index, p.field, p.code) for p in report.problems]
    assert len(found) == len(set(found))
    assert set(found) == EXPECTED
    assert len(EXPECTED) >= 15 and len({code for *_, code in EXPECTED}) >= 10
    assert all(p.reason for p in report.problems)
    assert report.records_written == sum(valid for _, valid in CORPUS.values())
    assert sum(report.dropped.values()) == len(EXPECTED)


def test_strict_mode_fails_at_the_first_fault_with_its_location(
    corpus: list[str], tiny_model_dir: Path, store: LocalObjectStore
) -> None:
    with pytest.raises(DataValidationError, match=r"alpaca.jsonl line 2: not valid JSON"):
        prepare_dataset(_config(tiny_model_dir, corpus, strict=True), store=store, user_id="alice")
