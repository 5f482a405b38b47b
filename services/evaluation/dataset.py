"""Reading an evaluation set: canonical JSONL records (conversations and raw texts) as the data service writes them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from shared.schemas.records import ConversationRecord, Message, TextRecord


@dataclass
class EvalSample:
    """A prompt (every turn before the last assistant turn), the reference reply and the tools offered.

    Turns are in OpenAI's shape (tool calls as `{"type": "function", "function": {...}}`), which chat
    templates of every model family accept.
    """

    messages: list[dict[str, Any]]
    response: dict[str, Any]
    tools: list[dict[str, Any]] | None = None

    @property
    def prompt(self) -> str:
        """The last user turn, for display."""
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")


@dataclass
class EvalSet:
    """Conversations (generation metrics and response perplexity) and raw texts (text perplexity)."""

    samples: list[EvalSample] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


def _turn(message: Message) -> dict[str, Any]:
    turn: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        turn["tool_calls"] = [{"type": "function", "function": call.model_dump()} for call in message.tool_calls]
    return turn


def _sample(record: ConversationRecord, where: str) -> EvalSample:
    turns = [_turn(m) for m in record.messages]
    last = max((i for i, m in enumerate(turns) if m["role"] == "assistant"), default=None)
    if last is None or last == 0:
        raise ValueError(f"{where}: a conversation needs a prompt and an assistant reply to evaluate")
    return EvalSample(turns[:last], turns[last], record.tools)


def parse_records(data: bytes, where: str) -> EvalSet:
    """The records of one canonical JSONL file; `where` names it in errors."""
    eval_set = EvalSet()
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        try:
            if "messages" in row:
                eval_set.samples.append(_sample(ConversationRecord.model_validate(row), f"{where}:{number}"))
            else:
                eval_set.texts.append(TextRecord.model_validate(row).text)
        except ValidationError as exc:
            raise ValueError(f"{where}:{number} is not a canonical record: {exc}") from exc
    return eval_set


def combine(parts: list[EvalSet], max_samples: int | None) -> EvalSet:
    """One set from several files, keeping the first `max_samples` records of each (as LLaMA-Factory does)."""
    combined = EvalSet()
    for part in parts:
        combined.samples += part.samples[:max_samples]
        combined.texts += part.texts[:max_samples]
    return combined
