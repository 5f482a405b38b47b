"""`POST /v1/completions`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ..deps import CallerDep, ServerDep
from ..generation import admit, load_target, tokenize, unless_disconnected
from ..openai_completions import completion_stream, text_completion
from ..schemas import Completion, CompletionRequest

router = APIRouter(tags=["openai"])


@router.post("/v1/completions", response_model=Completion)
async def create_completion(
    body: CompletionRequest, request: Request, server: ServerDep, caller: CallerDep
) -> Completion | StreamingResponse:
    """Continue one prompt or several (streamed as server-sent events with `stream: true`)."""
    target, backbone = await load_target(server, caller, body.model)
    texts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    prompts = [tokenize(backbone, text) for text in texts]
    admitted = admit(
        server,
        target=target,
        backbone=backbone,
        prompts=prompts,
        body=body,
        max_tokens=body.max_tokens,
        prompt_field="prompt",
    )
    if body.stream:
        return StreamingResponse(completion_stream(server, admitted, body), media_type="text/event-stream")
    return await unless_disconnected(request, text_completion(server, admitted, body))
