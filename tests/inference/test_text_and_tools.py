"""Plain-logic units: stop strings, incremental text, tool-call parsing, per-row sampling, error fields."""

from __future__ import annotations

import json

import torch

from services.inference.errors import field_path
from services.inference.sampling import SamplingParams, make_generator, next_tokens
from services.inference.text import TextStream, held_back
from services.inference.tool_calls import ToolCallStream, split_tool_calls

CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


class CharTokenizer:
    """One token per character, so tests control exactly what each step adds."""

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(map(chr, ids))


def feed(stream: TextStream, text: str) -> list[str]:
    return [stream.add(ord(ch)) for ch in text]


def test_held_back_is_the_longest_suffix_that_starts_a_needle() -> None:
    assert held_back("hello <to", ["<tool_call>"]) == 3
    assert held_back("hello", ["<tool_call>"]) == 0
    assert held_back("abST", ["STOP", "Tx"]) == 2


def test_text_stream_holds_back_a_possible_stop_and_cuts_at_it() -> None:
    stream = TextStream(CharTokenizer(), stop=("END",))
    deltas = feed(stream, "abc EN")
    assert "".join(deltas) == "abc " and deltas[-1] == ""  # "EN" might begin "END"
    assert stream.add(ord("D")) == "" and stream.stopped
    assert stream.text == "abc "


def test_text_stream_releases_a_false_alarm_once_it_diverges() -> None:
    stream = TextStream(CharTokenizer(), stop=("END",))
    assert "".join(feed(stream, "ENx")) == "ENx" and not stream.stopped


def test_split_tool_calls_returns_openai_calls_and_leftover_text() -> None:
    content, calls = split_tool_calls(f"Let me check.\n{CALL}")
    assert content == "Let me check."
    assert [c.function.name for c in calls] == ["get_weather"]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert split_tool_calls("<tool_call>not json</tool_call>") == ("<tool_call>not json</tool_call>", [])


def test_tool_call_stream_emits_whole_calls_as_their_tags_close() -> None:
    parser = ToolCallStream()
    shown, calls = "", []
    for ch in CALL + "\n" + CALL:
        text, new = parser.feed(ch)
        shown += text
        calls += new
    shown += parser.finish()
    assert shown == "" and len(calls) == 2 and calls[0].id != calls[1].id


def test_tool_call_stream_passes_plain_text_through() -> None:
    parser = ToolCallStream()
    assert parser.feed("a <b")[0] == "a <b" and parser.feed("<tool")[0] == "" and parser.finish() == "<tool"


def test_rows_sample_independently_and_repeatably() -> None:
    logits = torch.randn(3, 50)
    params = [
        SamplingParams(8),
        SamplingParams(8, temperature=1.0, seed=7),
        SamplingParams(8, temperature=1.0, top_p=1e-6),
    ]
    first = next_tokens(logits.clone(), params, [make_generator(p.seed) for p in params])
    again = next_tokens(logits.clone(), params, [make_generator(p.seed) for p in params])
    greedy = logits.argmax(-1).tolist()
    assert first[0] == greedy[0] and first[2] == greedy[2]  # greedy, and top_p that keeps only the top token
    assert first[1] == again[1]


def test_field_path_names_nested_fields() -> None:
    assert field_path(("body", "messages", 0, "role")) == "messages[0].role"
    assert field_path(("body",)) == "body"
