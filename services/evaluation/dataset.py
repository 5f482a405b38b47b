"""Reading an evaluation set: canonical JSONL records (conversations and raw texts) as the data service writes them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from shared.schemas.records import ConversationRecord, TextRecord


@dataclass
class EvalSample:
    """A prompt (every turn before the last assistant turn) and its reference response."""

    messages: list[dict[str, Any]]
    reference: str

    @property
    def prompt(self) -> str:
        """The last user turn, for display."""
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")


@dataclass
class EvalSet:
    """Conversations (generation metrics and response perplexity) and raw texts (text perplexity)."""

    samples: list[EvalSample] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


def _sample(record: ConversationRecord, where: str) -> EvalSample:
    turns = [m.model_dump(exclude_none=True) for m in record.messages]
    last = max((i for i, m in enumerate(turns) if m["role"] == "assistant"), default=None)
    if last is None or last == 0:
        raise ValueError(f"{where}: a conversation needs a prompt and an assistant reply to evaluate")
    return EvalSample(turns[:last], turns[last]["content"])


def parse_records(data: bytes, where: str, eval_set: EvalSet | None = None) -> EvalSet:
    """Add the records of one canonical JSONL file to `eval_set` (a new one if None) and return it."""
    eval_set = eval_set or EvalSet()
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


def limit(eval_set: EvalSet, max_samples: int | None) -> EvalSet:
    """The first `max_samples` conversations and texts (all if None)."""
    if max_samples is None:
        return eval_set
    return EvalSet(eval_set.samples[:max_samples], eval_set.texts[:max_samples])
