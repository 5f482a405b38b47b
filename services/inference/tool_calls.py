"""Reading tool calls back out of generated text.

Qwen-style chat templates (ours included) render a call as
`<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`; here that text becomes OpenAI `tool_calls`.
"""

from __future__ import annotations

import json
import re
import uuid

from .schemas import FunctionCall, ToolCall
from .text import held_back

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_BLOCK = re.compile(re.escape(OPEN) + r"(.*?)" + re.escape(CLOSE), re.DOTALL)


def parse_call(body: str) -> ToolCall | None:
    """The call in one block's body, or None when it is not a JSON object with a `name`."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get("arguments", {})
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", function=FunctionCall(name=data["name"], arguments=arguments))


def split_tool_calls(text: str) -> tuple[str | None, list[ToolCall]]:
    """Split a finished reply into its text (None when nothing but calls) and its tool calls."""
    calls: list[ToolCall] = []

    def take(match: re.Match[str]) -> str:
        call = parse_call(match.group(1))
        if call is None:
            return match.group(0)  # not a valid call: leave it visible rather than lose it
        calls.append(call)
        return ""

    content = _BLOCK.sub(take, text)
    if calls:
        content = content.strip()
    return content or None, calls


class ToolCallStream:
    """Splits streamed text into content to show now and tool calls completed so far."""

    def __init__(self) -> None:
        self._buffer = ""
        self.calls = 0

    def feed(self, delta: str) -> tuple[str, list[ToolCall]]:
        """Add streamed text; return (content safe to show, calls whose closing tag has arrived)."""
        self._buffer += delta
        content, calls = "", []
        while True:
            start = self._buffer.find(OPEN)
            if start < 0:
                keep = held_back(self._buffer, (OPEN,))
                content += self._buffer[: len(self._buffer) - keep]
                self._buffer = self._buffer[len(self._buffer) - keep :]
                break
            end = self._buffer.find(CLOSE, start)
            if end < 0:
                content += self._buffer[:start]
                self._buffer = self._buffer[start:]
                break
            call = parse_call(self._buffer[start + len(OPEN) : end])
            content += self._buffer[:start] if call else self._buffer[: end + len(CLOSE)]
            if call:
                calls.append(call)
            self._buffer = self._buffer[end + len(CLOSE) :]
        self.calls += len(calls)
        # Whitespace between calls is template layout, not a message.
        return ("" if self.calls and not content.strip() else content), calls

    def finish(self) -> str:
        """Text still buffered when generation ends (an unterminated call stays visible)."""
        rest, self._buffer = self._buffer, ""
        return "" if self.calls and not rest.strip() else rest
