"""Named templates render LLaMA-Factory's exact strings, and mark exactly the assistant parts as trained."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.data.rendering import Renderer

STUB = SimpleNamespace(bos_token="<s>", eos_token="</s>", special_tokens_map={}, chat_template=None)
MESSAGES = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "Q1"},
    {"role": "assistant", "content": "A1"},
    {"role": "user", "content": "Q2"},
    {"role": "assistant", "content": "A2"},
]
H = "<|start_header_id|>{}<|end_header_id|>\n\n"
# template -> (prompt1, answer1, prompt2, answer2): the full text is their concatenation.
EXPECTED = {
    "default": ("System: S</s>\nHuman: Q1</s>\nAssistant:", "A1</s>\n", "Human: Q2</s>\nAssistant:", "A2</s>\n"),
    "empty": ("SQ1", "A1", "Q2", "A2"),
    "qwen": (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n",
        "A1<|im_end|>\n",
        "<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n",
        "A2<|im_end|>\n",
    ),
    "llama2": ("<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nQ1 [/INST]", "A1</s>", "<s>[INST] Q2 [/INST]", "A2</s>"),
    "llama3": (
        "<s>" + H.format("system") + "S<|eot_id|>" + H.format("user") + "Q1<|eot_id|>" + H.format("assistant"),
        "A1<|eot_id|>",
        H.format("user") + "Q2<|eot_id|>" + H.format("assistant"),
        "A2<|eot_id|>",
    ),
    "baichuan2": ("S<reserved_106>Q1<reserved_107>", "A1", "<reserved_106>Q2<reserved_107>", "A2</s>"),
    "chatglm3": ("[gMASK]sop<|system|>\nS<|user|>\nQ1<|assistant|>", "\nA1", "<|user|>\nQ2<|assistant|>", "\nA2</s>"),
    "mistral": ("<s>[INST] S\n\nQ1[/INST]", " A1</s>", "[INST] Q2[/INST]", " A2</s>"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_named_template_matches_llamafactory_format(name: str) -> None:
    rendered = Renderer(STUB, name).render(MESSAGES, None)
    parts = EXPECTED[name]
    assert rendered.text == "".join(parts)
    trained = [rendered.text[a:b] for a, b in rendered.spans]
    assert trained == [parts[1], parts[3]]


def test_qwen_template_writes_tool_definitions_calls_and_results() -> None:
    tools = [{"name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}]
    messages = [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "", "tool_calls": [{"name": "f", "arguments": '{"x": 1}'}]},
        {"role": "tool", "content": "42"},
        {"role": "assistant", "content": "It is 42."},
    ]
    rendered = Renderer(STUB, "qwen").render(messages, tools)
    assert '<tools>\n{"type": "function", "function": {"name": "f", "description": "d"' in rendered.text
    assert [rendered.text[a:b] for a, b in rendered.spans] == [
        '<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call><|im_end|>\n',
        "It is 42.<|im_end|>\n",
    ]
    assert "<|im_start|>user\n<tool_response>\n42\n</tool_response><|im_end|>\n<|im_start|>assistant\n" in rendered.text


def test_unknown_template_lists_the_known_names() -> None:
    with pytest.raises(ValueError, match="qwen"):
        Renderer(STUB, "nope")
