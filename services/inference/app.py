"""The inference server's FastAPI app factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .config import ServeConfig
from .errors import install_error_handlers
from .metrics import RequestMetricsMiddleware
from .routes import chat, completions, generate, models, ops
from .server import Server, build_server


def create_app(config: ServeConfig, server: Server | None = None) -> FastAPI:
    """An app serving `config.model`; pass `server` to reuse an already loaded one (tests, benchmarks).

    The model loads before the app is built, so `/healthz` answers only once it can serve. On shutdown
    the lifespan drains the queue: uvicorn stops accepting, and every admitted request still finishes.
    """
    server = server or build_server(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await server.backend.start()
        try:
            yield
        finally:
            await server.backend.stop()

    app = FastAPI(title="TuneFlow inference", version="0.1.0", lifespan=lifespan)
    app.state.server = server
    routers = (generate.router, chat.router, completions.router, models.router, ops.router)
    for router in routers:
        app.include_router(router)
    install_error_handlers(app)
    paths = frozenset(route.path for router in routers for route in router.routes)  # type: ignore[attr-defined]
    app.add_middleware(RequestMetricsMiddleware, metrics=server.metrics, paths=paths)
    return app
