"""`POST /generate`: the simplest form, a text in and its greedy continuation out."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..deps import CallerDep, ServerDep
from ..generation import admit, collect, load_target, tokenize, unless_disconnected
from ..schemas import GenerateRequest, GenerateResponse, SamplingFields

router = APIRouter(tags=["generate"])


@router.post("/generate", response_model=GenerateResponse)
async def generate(body: GenerateRequest, request: Request, server: ServerDep, caller: CallerDep) -> GenerateResponse:
    """Continue `text` with the base model (or `model`), using the model's own generation defaults."""
    name = body.model or server.config.base_name
    target, backbone = await load_target(server, caller, name)
    fields = SamplingFields(model=name, max_tokens=body.max_tokens)
    prompt = tokenize(backbone, body.text)
    admitted = admit(
        server,
        target=target,
        backbone=backbone,
        prompts=[prompt],
        body=fields,
        max_tokens=body.max_tokens,
        prompt_field="text",
    )
    texts, _ = await unless_disconnected(request, collect(server, admitted))
    return GenerateResponse(response=texts[0])
