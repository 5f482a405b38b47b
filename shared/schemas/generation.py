"""Batch generation's contract: `inference.generate` reads a requests JSONL from the store and writes responses.

Any service can ask for generations without importing the inference service: it writes one
`GenerationRequest` per line under its job's prefix, sends `inference.generate` with a `GenerateConfig`, and
a later task of the same chain reads one `GenerationResponse` per line at
`users/{user}/jobs/{job_id}/{responses_name}`, in request order.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_RESPONSES_NAME = "generate/responses.jsonl"


class GenerateConfig(BaseModel):
    """Config of `inference.generate`: which model, which requests, how to sample."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        min_length=1,
        description="Base model (or an exported, merged one): a local folder, a hub id, a `store://users/...` "
        "prefix, or one of your `ft:` model names.",
    )
    adapter: str | None = Field(
        None,
        description="LoRA adapter run on `model`: a local folder, a `store://users/...` prefix or your `ft:` name.",
    )
    requests_key: str = Field(
        description="Object key of the requests JSONL (one GenerationRequest per line), under your own prefix."
    )
    responses_name: str = Field(
        DEFAULT_RESPONSES_NAME,
        description="Where the responses JSONL goes, relative to `users/{user}/jobs/{job_id}/`.",
    )
    max_new_tokens: int = Field(256, ge=1, le=8192, description="Most tokens generated per request.")
    temperature: float = Field(0.0, ge=0, le=2, description="0 decodes greedily.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    seed: int = Field(
        0,
        description="Request i (0-based line) samples with seed + i: the same file and seed give the same "
        "responses, and repeated prompts still differ when sampling.",
    )
    batch_size: int = Field(16, ge=1, le=256, description="Most sequences decoded together.")


class ChatTurn(BaseModel):
    """One message of a request's conversation."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"] = Field(description="Who speaks.")
    content: str = Field(description="Text of the turn.")


class GenerationRequest(BaseModel):
    """One line of a requests JSONL: a stable id, and a conversation to answer or a text to continue."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, description="Echoed in the response; unique within the file.")
    messages: list[ChatTurn] | None = Field(
        None, description="A conversation, rendered with the model's chat template and a generation prompt."
    )
    prompt: str | None = Field(None, description="Raw text continued as it is (no template).")

    @model_validator(mode="after")
    def _one_input(self) -> GenerationRequest:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give exactly one of `messages` and `prompt`")
        if self.messages is not None and not self.messages:
            raise ValueError("messages: give at least one message")
        return self


class GenerationResponse(BaseModel):
    """One line of a responses JSONL."""

    id: str = Field(description="The request's id.")
    text: str = Field(description="The generated text (empty on error).")
    finish_reason: Literal["stop", "length", "error"] = Field(
        description="`stop`: end of turn; `length`: cut at `max_new_tokens`; `error`: see `error`."
    )
    error: str | None = Field(None, description="Why this request could not be generated (e.g. prompt too long).")
