"""Prepared token ids and labels equal `apply_chat_template`'s ids and assistant mask on the tiny tokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from services.data.prepare import prepare_dataset
from shared.schemas.datasets import PrepareConfig
from shared.storage.local import LocalObjectStore

TOOLS = [{"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {}}}]
RECORDS = {
    "alpaca": {"instruction": "Add the numbers.", "input": "2 and 3", "output": "They make 5.", "system": "Be brief."},
    "sharegpt_tools": {
        "conversations": [
            {"from": "human", "value": "Weather in Paris?"},
            {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})},
            {"from": "observation", "value": '{"sky": "clear"}'},
            {"from": "gpt", "value": "It is clear in Paris."},
        ],
        "tools": json.dumps(TOOLS),
    },
    "multi_turn": {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": "Blue."},
            {"role": "user", "content": "Another?"},
            {"role": "assistant", "content": "Red."},
        ]
    },
}
# The expected canonical messages, as an OpenAI-style client would pass them to apply_chat_template.
EXPECTED_MESSAGES: dict[str, tuple[list[dict[str, Any]], Any]] = {
    "alpaca": (
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Add the numbers.\n2 and 3"},
            {"role": "assistant", "content": "They make 5."},
        ],
        None,
    ),
    "sharegpt_tools": (
        [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"name": "get_weather", "arguments": '{"city": "Paris"}'}],
            },
            {"role": "tool", "content": '{"sky": "clear"}'},
            {"role": "assistant", "content": "It is clear in Paris."},
        ],
        TOOLS,
    ),
    "multi_turn": (RECORDS["multi_turn"]["messages"], None),
}


def _with_generation_marks(template: str) -> str:
    """The tiny template with transformers' `{% generation %}` marks around each assistant turn."""
    head, rest = template.split("{%- elif message['role'] == 'assistant' %}", 1)
    branch, tail = rest.split("{%- elif message['role'] == 'tool' %}", 1)
    opening, closing = "{{- '<|im_start|>assistant\\n' }}", "{{- '<|im_end|>\\n' }}"
    assert opening in branch and closing in branch
    branch = branch.replace(opening, opening + "{% generation %}", 1)
    cut = branch.rindex(closing) + len(closing)
    branch = branch[:cut] + "{% endgeneration %}" + branch[cut:]
    return head + "{%- elif message['role'] == 'assistant' %}" + branch + "{%- elif message['role'] == 'tool' %}" + tail


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_prepared_rows_equal_apply_chat_template(
    kind: str, tokenizer: Any, tiny_model_dir: Path, tmp_path: Path, store: LocalObjectStore
) -> None:
    data = tmp_path / f"{kind}.jsonl"
    data.write_text(json.dumps(RECORDS[kind]) + "\n")
    config = PrepareConfig(model_name_or_path=str(tiny_model_dir), dataset=[str(data)], cutoff_len=4096)
    manifest = prepare_dataset(config, store=store, user_id="alice")
    row = pq.read_table(store.root / manifest.splits["train"]).to_pylist()[0]

    messages, tools = EXPECTED_MESSAGES[kind]
    marked = _with_generation_marks(tokenizer.chat_template)
    plain = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
    assert tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, chat_template=marked) == plain
    expected = tokenizer.apply_chat_template(
        messages, tools=tools, chat_template=marked, return_dict=True, return_assistant_tokens_mask=True
    )
    assert row["input_ids"] == expected["input_ids"]
    assert row["labels"] == [
        t if m else -100 for t, m in zip(expected["input_ids"], expected["assistant_masks"], strict=True)
    ]
    assert manifest.num_trained_tokens["train"] == sum(expected["assistant_masks"])
