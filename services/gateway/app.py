"""The gateway's HTTP app. At this stage: health. Users, jobs and pipelines routes come next."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from .health import check_all


def create_app() -> FastAPI:
    """Build the FastAPI app."""
    app = FastAPI(title="TuneFlow gateway", version="0.1.0")

    @app.get("/healthz", tags=["ops"])
    def healthz() -> JSONResponse:
        """Database, broker and object store reachability; 503 if any is down."""
        checks: dict[str, Any] = check_all()
        ok = all(c["ok"] for c in checks.values())
        return JSONResponse({"status": "ok" if ok else "degraded", "checks": checks}, status_code=200 if ok else 503)

    return app


app = create_app()
