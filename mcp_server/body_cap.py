"""The MCP SDK's own request-body cap, raised to the server's (SHIELD_MAX_REQUEST_BYTES).

The SDK refuses streamable-HTTP bodies over 4 MiB (``mcp.server.transport_security``'s
``RequestBodyLimitMiddleware``) with a bare 413 that clients show as "Server returned an
error response", far below the uploads the server documents. fastmcp 4.1.2 neither passes
the SDK's ``max_request_body_size`` through nor builds the session manager before its
lifespan starts, so the limiter is resized when the lifespan has built it. The server's own
guard (``auth.limit_body``) keeps the same cap outside and answers first, readably.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastmcp.server.http import StreamableHTTPASGIApp
from mcp.server.transport_security import RequestBodyLimitMiddleware
from starlette.applications import Starlette


def raise_sdk_body_cap(app: Starlette, max_bytes: int) -> None:
    """Make the SDK's limiter in ``app`` (fastmcp's ``http_app()``) take ``max_bytes``.

    Raises RuntimeError at start-up if fastmcp or the SDK changed shape, rather than
    leaving a hidden 4 MiB limit in place.
    """
    endpoints = [
        endpoint
        for route in app.routes
        if isinstance(endpoint := getattr(route, "endpoint", None), StreamableHTTPASGIApp)
    ]
    if len(endpoints) != 1:
        raise RuntimeError("fastmcp's streamable-HTTP endpoint not found; did fastmcp change?")
    endpoint = endpoints[0]
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(started: Any) -> AsyncIterator[Any]:
        async with inner(started) as state:
            manager = endpoint.session_manager
            limiter = getattr(manager, "asgi_app", None)
            if not isinstance(limiter, RequestBodyLimitMiddleware):
                raise RuntimeError("the MCP SDK's body limiter was not found; did the SDK change?")
            limiter.max_body_size = max_bytes
            yield state

    app.router.lifespan_context = lifespan
