"""`POST /v1/chat/completions`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ..deps import CallerDep, ServerDep
from ..generation import admit, load_target, unless_disconnected
from ..openai_chat import chat_completion, chat_prompt, chat_stream
from ..schemas import ChatCompletion, ChatCompletionRequest

router = APIRouter(tags=["openai"])


@router.post("/v1/chat/completions", response_model=ChatCompletion)
async def create_chat_completion(
    body: ChatCompletionRequest, request: Request, server: ServerDep, caller: CallerDep
) -> ChatCompletion | StreamingResponse:
    """Reply to a conversation (streamed as server-sent events with `stream: true`)."""
    target, backbone = await load_target(server, caller, body.model)
    prompt = chat_prompt(backbone, body)
    max_tokens = body.max_completion_tokens or body.max_tokens
    admitted = admit(
        server,
        target=target,
        backbone=backbone,
        prompts=[prompt],
        body=body,
        max_tokens=max_tokens,
        prompt_field="messages",
    )
    if body.stream:
        return StreamingResponse(chat_stream(server, admitted, body), media_type="text/event-stream")
    return await unless_disconnected(request, chat_completion(server, admitted, body))
