"""Text completions: prompts continued as they are, no template."""

from __future__ import annotations

from collections.abc import AsyncIterator

from .generation import Admitted, collect, completion_id, sse, sse_error, updates
from .schemas import Completion, CompletionChoice, CompletionRequest
from .server import Server


async def text_completion(server: Server, admitted: Admitted, body: CompletionRequest) -> Completion:
    """Wait for every choice (`n` per prompt, in prompt order) and build the response."""
    texts, reasons = await collect(server, admitted)
    choices = [
        CompletionChoice(index=i, text=text, finish_reason=reason)
        for i, (text, reason) in enumerate(zip(texts, reasons, strict=True))
    ]
    response_id, created = completion_id("cmpl")
    return Completion(id=response_id, created=created, model=body.model, choices=choices, usage=admitted.usage())


async def completion_stream(server: Server, admitted: Admitted, body: CompletionRequest) -> AsyncIterator[str]:
    """Server-sent chunks of text per choice, each choice's finish reason, optional usage, then [DONE]."""
    response_id, created = completion_id("cmpl")

    def chunk(choices: list[CompletionChoice], **extra: object) -> str:
        return sse(Completion(id=response_id, created=created, model=body.model, choices=choices, **extra))

    async for i, update in updates(server, admitted):
        if update.error:
            yield sse_error(update.error)
            return
        yield chunk([CompletionChoice(index=i, text=update.text, finish_reason=update.finish_reason)])
    if body.stream_options and body.stream_options.include_usage:
        yield chunk([], usage=admitted.usage())
    yield sse("[DONE]")
