"""Dependencies routes declare: the server state and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from .access import Caller, authenticate, off_the_loop
from .server import Server


def get_server(request: Request) -> Server:
    """The server state the app's lifespan built."""
    return request.app.state.server


ServerDep = Annotated[Server, Depends(get_server)]


async def get_caller(server: ServerDep, authorization: Annotated[str | None, Header()] = None) -> Caller:
    """The client behind the request's API key (a database lookup in the platform, so off the loop)."""
    return await off_the_loop(server.config, authenticate, authorization)


CallerDep = Annotated[Caller, Depends(get_caller)]
