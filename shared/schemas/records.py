"""The canonical record forms every service reads after the data service has normalised a dataset.

Conversations use OpenAI's `messages` shape, one JSON object per line (`.jsonl`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ToolCall(BaseModel):
    """One function call made by the assistant."""

    name: str = Field(description="Function name.")
    arguments: str = Field(description="Arguments as a JSON string.")


class Message(BaseModel):
    """One turn."""

    role: Literal["system", "user", "assistant", "tool"] = Field(description="Who speaks.")
    content: str = Field("", description="Text of the turn.")
    tool_calls: list[ToolCall] | None = Field(None, description="Function calls (assistant turns only).")


class ConversationRecord(BaseModel):
    """A supervised example: the last assistant turn is the response."""

    messages: list[Message] = Field(description="Turns in order; system first if present.")
    tools: list[dict[str, Any]] | None = Field(None, description="JSON-schema tool definitions offered.")


class TextRecord(BaseModel):
    """A pre-training example."""

    text: str = Field(description="Raw text.")


class PreferenceRecord(BaseModel):
    """A preference pair for later reward/DPO stages."""

    messages: list[Message] = Field(description="The prompt turns.")
    chosen: Message = Field(description="Preferred response.")
    rejected: Message = Field(description="Dispreferred response.")
