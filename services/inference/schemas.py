"""Request and response bodies, shaped like OpenAI's so existing clients work unchanged."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Unknown OpenAI parameters (`user`, `presence_penalty`, ...) are ignored rather than refused, as other
# OpenAI-compatible servers do, so clients that always send them keep working.
_REQUEST_CONFIG = ConfigDict(extra="ignore")


class StreamOptions(BaseModel):
    """Options for streamed responses."""

    include_usage: bool = Field(default=False, description="Send a last chunk with token counts for the request.")


class SamplingFields(BaseModel):
    """Sampling parameters both completion endpoints take."""

    model_config = _REQUEST_CONFIG

    model: str = Field(min_length=1, description="Base model name, local adapter name, or your `ft:...` model.")
    temperature: float | None = Field(
        default=None, ge=0, le=2, description="0 is greedy; default: the model's generation config."
    )
    top_p: float | None = Field(default=None, gt=0, le=1, description="Nucleus sampling mass; default 1.")
    max_tokens: int | None = Field(default=None, ge=1, description="Most tokens to generate per choice.")
    stop: str | list[str] | None = Field(default=None, description="Up to 4 strings that end generation.")
    seed: int | None = Field(default=None, description="Makes sampling repeatable.")
    n: int = Field(default=1, ge=1, le=16, description="Choices to generate per prompt.")
    stream: bool = Field(default=False, description="Stream server-sent events ending with `data: [DONE]`.")
    stream_options: StreamOptions | None = Field(default=None, description="Options for streamed responses.")

    @field_validator("stop")
    @classmethod
    def _at_most_four_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and (len(value) > 4 or any(not s for s in value)):
            raise ValueError("give at most 4 non-empty stop strings")
        return value

    @property
    def stop_strings(self) -> tuple[str, ...]:
        """`stop` as a tuple."""
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class FunctionCall(BaseModel):
    """The function a tool call invokes."""

    name: str = Field(description="Function name.")
    arguments: str = Field(description="Arguments as a JSON string.")


class ToolCall(BaseModel):
    """A function call the assistant makes."""

    id: str = Field(description="Call id, echoed by the tool message that answers it.")
    type: Literal["function"] = Field(default="function", description="Always `function`.")
    function: FunctionCall = Field(description="Which function, with what arguments.")


class ContentPart(BaseModel):
    """One part of a multi-part message; only text parts are understood by text models."""

    model_config = _REQUEST_CONFIG

    type: Literal["text"] = Field(description="Part type; only `text`.")
    text: str = Field(description="The text.")


class ChatMessage(BaseModel):
    """One conversation turn."""

    model_config = _REQUEST_CONFIG

    role: Literal["system", "developer", "user", "assistant", "tool"] = Field(description="Who speaks.")
    content: str | list[ContentPart] | None = Field(default=None, description="Text, or a list of text parts.")
    tool_calls: list[ToolCall] | None = Field(default=None, description="Calls an assistant turn made.")
    tool_call_id: str | None = Field(default=None, description="The call a tool turn answers.")
    name: str | None = Field(default=None, description="Optional speaker name.")

    @property
    def text(self) -> str:
        """The content as one string."""
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class FunctionDefinition(BaseModel):
    """A function the model may call."""

    name: str = Field(min_length=1, description="Function name.")
    description: str | None = Field(default=None, description="What it does.")
    parameters: dict[str, Any] | None = Field(default=None, description="JSON schema of its arguments.")


class ToolDefinition(BaseModel):
    """A tool offered to the model."""

    type: Literal["function"] = Field(default="function", description="Always `function`.")
    function: FunctionDefinition = Field(description="The function.")


class ChatCompletionRequest(SamplingFields):
    """`POST /v1/chat/completions`."""

    messages: list[ChatMessage] = Field(min_length=1, description="The conversation so far.")
    max_completion_tokens: int | None = Field(default=None, ge=1, description="Newer name for `max_tokens`.")
    tools: list[ToolDefinition] | None = Field(default=None, description="Functions the model may call.")
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = Field(
        default=None, description="`none` turns tool-call parsing off; other values leave it to the model."
    )


class CompletionRequest(SamplingFields):
    """`POST /v1/completions`."""

    prompt: str | list[str] = Field(description="Text to continue, or a list of texts (one choice set each).")

    @field_validator("prompt")
    @classmethod
    def _prompt_not_empty(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("give at least one prompt")
        return value


class GenerateRequest(BaseModel):
    """`POST /generate`, the simplest form: greedy continuation of a text."""

    model_config = _REQUEST_CONFIG

    text: str = Field(description="Text to continue.")
    model: str | None = Field(default=None, description="Model name; default the base model.")
    max_tokens: int | None = Field(default=None, ge=1, description="Most tokens to generate.")


class GenerateResponse(BaseModel):
    """The continuation."""

    response: str = Field(description="Generated text.")


class Usage(BaseModel):
    """Token counts of a request."""

    prompt_tokens: int = Field(description="Tokens in the prompt(s).")
    completion_tokens: int = Field(description="Tokens generated, over all choices.")
    total_tokens: int = Field(description="The sum.")


class AssistantMessage(BaseModel):
    """The assistant's reply."""

    role: Literal["assistant"] = "assistant"
    content: str | None = Field(description="Reply text; None when the reply is only tool calls.")
    tool_calls: list[ToolCall] | None = Field(default=None, description="Function calls the reply makes.")


class ChatChoice(BaseModel):
    """One generated reply."""

    index: int
    message: AssistantMessage
    finish_reason: str | None = Field(description="`stop`, `length` or `tool_calls`.")
    logprobs: None = None


class ChatCompletion(BaseModel):
    """A finished chat completion."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ToolCallDelta(BaseModel):
    """A streamed tool call (sent whole, once its closing tag has been generated)."""

    index: int
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatDelta(BaseModel):
    """What a stream chunk adds to a reply."""

    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChatChunkChoice(BaseModel):
    """One reply's increment."""

    index: int
    delta: ChatDelta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed chat completion."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class CompletionChoice(BaseModel):
    """One continuation (or, streamed, one increment of it)."""

    index: int
    text: str
    finish_reason: str | None = None
    logprobs: None = None


class Completion(BaseModel):
    """A finished completion, or one streamed chunk of it (same shape, as OpenAI does)."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    """A model the caller may use."""

    id: str = Field(description="The name to put in `model`.")
    object: Literal["model"] = "model"
    created: int = Field(description="Unix time the model was made (0 when unknown).")
    owned_by: str = Field(description="`tuneflow` for served models, else the owning user's id.")


class ModelList(BaseModel):
    """`GET /v1/models`."""

    object: Literal["list"] = "list"
    data: list[ModelCard]
