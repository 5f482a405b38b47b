"""`GET /v1/models`."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from ..access import list_models
from ..deps import CallerDep, ServerDep
from ..schemas import ModelList

router = APIRouter(tags=["openai"])


@router.get("/v1/models", response_model=ModelList)
async def get_models(server: ServerDep, caller: CallerDep) -> ModelList:
    """The models the caller may address: the base, local adapters, and their own fine-tuned models."""
    return ModelList(data=await run_in_threadpool(list_models, server.config, caller))
