"""Records to model text: tool definitions reach the prompt, tool calls are the reference and are scored."""

from __future__ import annotations

import json
from typing import Any

from services.evaluation.dataset import combine, parse_records
from services.evaluation.metrics.perplexity import response_sequences
from services.evaluation.prompts import reference_text, render_prompt

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
RECORD = {
    "messages": [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{"name": "get_weather", "arguments": '{"city": "Paris"}'}]},
    ],
    "tools": [WEATHER],
}
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


def test_tool_calls_are_rendered_by_the_template(tiny: tuple[Any, Any]) -> None:
    _, tok = tiny
    lines = (json.dumps(RECORD) + "\n" + json.dumps({"text": "raw text"}) + "\n").encode()
    eval_set = parse_records(lines, "tools.jsonl")
    sample = eval_set.samples[0]
    assert eval_set.texts == ["raw text"] and sample.prompt == "Weather in Paris?"
    prompt = render_prompt(tok, sample.messages, None, sample.tools)
    assert "# Tools" in prompt and '"get_weather"' in prompt and prompt.endswith("<|im_start|>assistant\n")
    assert reference_text(tok, sample.messages, sample.response, None, sample.tools) == CALL
    assert (
        reference_text(tok, sample.messages, sample.response, "raw")
        == '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    )
    (sequence,) = response_sequences(tok, [sample], None)
    scored = [t for t, s in zip(sequence.input_ids, sequence.scored, strict=True) if s]
    assert tok.decode(scored) == CALL + "<|im_end|>\n"


def test_max_samples_caps_each_file() -> None:
    line = (json.dumps(RECORD) + "\n").encode()
    one, two = parse_records(line * 3, "a.jsonl"), parse_records(line * 2, "b.jsonl")
    assert len(combine([one, two], 2).samples) == 4
    assert len(combine([one, two], None).samples) == 5
