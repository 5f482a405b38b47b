"""Render a canonical record to the exact text the model sees, and mark which characters are trained.

With no template name the tokenizer's own `chat_template` renders (through transformers, as
`apply_chat_template` does), and the trained spans are found by rendering each conversation prefix: the
assistant turn `i` spans from the end of `messages[:i]` with the generation prompt to the end of
`messages[:i+1]`. A named template renders from LLaMA-Factory's slots (`templates.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from jinja2 import TemplateError
from transformers.utils.chat_template_utils import render_jinja_template

from .converters import Record, RecordError
from .templates import BOS, EOS, NamedTemplate, get_template


@dataclass
class Rendered:
    """Text plus the character ranges of the assistant turns (trained unless masked)."""

    text: str
    spans: list[tuple[int, int]] = field(default_factory=list)
    train_all: bool = False  # pre-training: every token is trained


def _plain(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # apply_chat_template drops None-valued keys too, so templates see the same messages here and there.
    return [{k: v for k, v in m.items() if v is not None} for m in messages]


class Renderer:
    """Renders records for one tokenizer and template choice."""

    def __init__(self, tokenizer: Any, template: str | None = None, *, chat: bool = True):
        """Set up rendering.

        Args:
            tokenizer: Supplies the chat template and the bos/eos/special tokens.
            template: A named template; None uses the tokenizer's `chat_template`.
            chat: False when only raw text (pre-training) is rendered, so no chat template is needed.
        """
        self.tokenizer = tokenizer
        self.named: NamedTemplate | None = get_template(template) if template else None
        if chat and self.named is None and not isinstance(getattr(tokenizer, "chat_template", None), str):
            raise ValueError("the tokenizer has no chat_template; name a template (e.g. template: qwen)")
        self.bos = tokenizer.bos_token or ""
        self.eos = tokenizer.eos_token or ""
        self.special = dict(tokenizer.special_tokens_map)

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> Rendered:
        """Render one conversation that ends with an assistant turn."""
        if self.named is not None:
            return self._render_named(messages, tools)
        return self._render_chat_template(_plain(messages), tools)

    def render_text(self, text: str) -> Rendered:
        """Pre-training text: the document and an end-of-sequence token, all trained."""
        return Rendered(text + self.eos, train_all=True)

    def render_record(self, record: Record) -> list[Rendered]:
        """Renderings of a canonical record: one for text and conversations, chosen and rejected for pairs."""
        if "text" in record:
            return [self.render_text(record["text"])]
        tools = record.get("tools")
        if "chosen" in record:
            return [self.render([*record["messages"], record[k]], tools) for k in ("chosen", "rejected")]
        return [self.render(record["messages"], tools)]

    def _chat(self, conversations: list[list[dict[str, Any]]], tools: Any, generation: bool) -> list[str]:
        try:
            rendered, _ = cast(Any, render_jinja_template)(
                conversations=conversations,
                tools=tools,
                chat_template=self.tokenizer.chat_template,
                add_generation_prompt=generation,
                **self.special,
            )
        except TemplateError as exc:  # templates reject what their model cannot take (e.g. system roles)
            raise RecordError("template_error", f"the chat template refused this record: {exc}") from exc
        return list(rendered)

    def _render_chat_template(self, messages: list[dict[str, Any]], tools: Any) -> Rendered:
        turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
        ends = self._chat([messages[: i + 1] for i in turns], tools, generation=False)
        starts = self._chat([messages[:i] for i in turns], tools, generation=True)
        full = ends[-1]
        spans = []
        for start, end in zip(starts, ends, strict=True):
            if not (full.startswith(end) and end.startswith(start)):
                raise RecordError(
                    "template_unstable",
                    "the chat template renders earlier turns differently once later turns are added, so trained "
                    "tokens cannot be located; name a template instead",
                )
            spans.append((len(start), len(end)))
        return Rendered(full, spans)

    def _fill(self, slot: str, content: str = "") -> str:
        return slot.replace(BOS, self.bos).replace(EOS, self.eos).replace("{{content}}", content)

    def _render_named(self, messages: list[dict[str, Any]], tools: Any) -> Rendered:
        t = self.named
        assert t is not None
        system = t.default_system
        if messages and messages[0]["role"] == "system":
            system, messages = messages[0]["content"], messages[1:]
        parts: list[str] = []
        spans: list[tuple[int, int]] = []
        length = 0
        for i, message in enumerate(_merge_tool_results(messages)):
            prompt, system_text = "", ""
            if i == 0:
                prompt += self._fill(t.prefix)
                if system or tools:
                    tool_text = t.format_tools(tools) if tools else ""
                    if t.fuse_system:
                        system_text = self._fill(t.system, system + tool_text)
                    else:
                        prompt += self._fill(t.system, system + tool_text)
            role = message["role"]
            if role == "user":
                prompt += self._fill(t.user, system_text + message["content"])
            elif role == "tool":
                prompt += self._fill(t.observation_slot, message["content"])
            if prompt:
                parts.append(prompt)
                length += len(prompt)
            if role == "assistant":
                calls = message.get("tool_calls")
                if calls:
                    body = message.get("content", "") + t.format_calls([(c["name"], c["arguments"]) for c in calls])
                    answer = self._fill(t.function_slot, body)
                else:
                    answer = self._fill(t.assistant_slot, message["content"])
                parts.append(answer)
                spans.append((length, length + len(answer)))
                length += len(answer)
        if t.efficient_eos and spans:  # the one eos closes the final response and is trained with it
            parts.append(self.eos)
            spans[-1] = (spans[-1][0], length + len(self.eos))
        return Rendered("".join(parts), spans)


def _merge_tool_results(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive tool results become one observation, the only way LLaMA-Factory templates can show them."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        if message["role"] == "tool" and merged and merged[-1]["role"] == "tool":
            merged[-1] = {"role": "tool", "content": merged[-1]["content"] + "\n" + message["content"]}
        else:
            merged.append(message)
    return merged
