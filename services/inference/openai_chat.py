"""Chat completions: messages in through the model's chat template, replies and tool calls out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from .errors import bad_request
from .generation import Admitted, collect, completion_id, sse, sse_error, tokenize, updates
from .model_cache import Backbone
from .schemas import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatDelta,
    ChatMessage,
    ToolCallDelta,
    Usage,
)
from .server import Server
from .tool_calls import ToolCallStream, split_tool_calls


def tools_enabled(body: ChatCompletionRequest) -> bool:
    """Whether tools are offered and replies should be parsed for calls."""
    return bool(body.tools) and body.tool_choice != "none"


def chat_prompt(backbone: Backbone, body: ChatCompletionRequest) -> list[int]:
    """The prompt's token ids: the conversation rendered by the model's chat template.

    Raises:
        APIError: 400 naming `messages` when the template rejects them, `model` when it has no template.
    """
    tokenizer = backbone.tokenizer
    if not getattr(tokenizer, "chat_template", None):
        raise bad_request("this model has no chat template; use /v1/completions", "model")
    tools = [tool.model_dump(exclude_none=True) for tool in body.tools or []] if tools_enabled(body) else None
    try:
        text = tokenizer.apply_chat_template(
            [_template_message(m) for m in body.messages], tools=tools, add_generation_prompt=True, tokenize=False
        )
    except Exception as exc:  # jinja raises whatever the template author chose
        raise bad_request(f"the chat template rejected them: {exc}", "messages") from exc
    return tokenize(backbone, text)


def _template_message(message: ChatMessage) -> dict[str, Any]:
    role = "system" if message.role == "developer" else message.role  # templates predate `developer`
    rendered: dict[str, Any] = {"role": role, "content": message.text}
    if message.tool_calls:
        rendered["tool_calls"] = [call.model_dump() for call in message.tool_calls]
    if message.tool_call_id:
        rendered["tool_call_id"] = message.tool_call_id
    return rendered


async def chat_completion(server: Server, admitted: Admitted, body: ChatCompletionRequest) -> ChatCompletion:
    """Wait for every choice and build the response."""
    texts, reasons = await collect(server, admitted)
    choices = []
    for i, (text, reason) in enumerate(zip(texts, reasons, strict=True)):
        content, calls = split_tool_calls(text) if tools_enabled(body) else (text, [])
        message = AssistantMessage(content=content, tool_calls=calls or None)
        choices.append(ChatChoice(index=i, message=message, finish_reason="tool_calls" if calls else reason))
    response_id, created = completion_id("chatcmpl")
    return ChatCompletion(id=response_id, created=created, model=body.model, choices=choices, usage=admitted.usage())


async def chat_stream(server: Server, admitted: Admitted, body: ChatCompletionRequest) -> AsyncIterator[str]:
    """Server-sent chunks: the role, text deltas, whole tool calls as they close, finish reasons, [DONE]."""
    response_id, created = completion_id("chatcmpl")
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(choices: list[ChatChunkChoice], usage: Usage | None = None) -> str:
        return sse(ChatCompletionChunk(id=response_id, created=created, model=body.model, choices=choices, usage=usage))

    parsers = [ToolCallStream() if tools_enabled(body) else None for _ in admitted.rows]
    yield chunk([ChatChunkChoice(index=i, delta=ChatDelta(role="assistant", content="")) for i in range(len(parsers))])
    async for i, update in updates(server, admitted):
        if update.error:
            yield sse_error(update.error)
            return
        parser = parsers[i]
        content, calls = parser.feed(update.text) if parser else (update.text, [])
        if update.finish_reason and parser:
            content += parser.finish()
        if content or calls:
            first = parser.calls - len(calls) if parser else 0
            deltas = [ToolCallDelta(index=first + k, id=c.id, function=c.function) for k, c in enumerate(calls)]
            delta = ChatDelta(content=content or None, tool_calls=deltas or None)
            yield chunk([ChatChunkChoice(index=i, delta=delta)])
        if update.finish_reason:
            reason = "tool_calls" if parser and parser.calls else update.finish_reason
            yield chunk([ChatChunkChoice(index=i, delta=ChatDelta(), finish_reason=reason)])
    if include_usage:
        yield chunk([], usage=admitted.usage())
    yield sse("[DONE]")
