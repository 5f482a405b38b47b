"""`GET /v1/models`."""

from __future__ import annotations

from fastapi import APIRouter

from ..access import list_models, off_the_loop
from ..deps import CallerDep, ServerDep
from ..schemas import ModelList

router = APIRouter(tags=["openai"])


@router.get("/v1/models", response_model=ModelList)
async def get_models(server: ServerDep, caller: CallerDep) -> ModelList:
    """The models the caller may address: the base, local adapters, and their own fine-tuned models."""
    return ModelList(data=await off_the_loop(server.config, list_models, caller))
