"""Operations: `/healthz` for orchestrators, `/metrics` for Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ..deps import ServerDep

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz(server: ServerDep) -> dict[str, str]:
    """200 once the model is loaded and the server takes requests."""
    return {"status": "ok", "model": server.config.base_name}


@router.get("/metrics")
async def metrics(server: ServerDep) -> Response:
    """Prometheus exposition of the server's metrics."""
    return Response(server.metrics.render(), media_type=CONTENT_TYPE_LATEST)
