"""Builds the FastMCP server and its HTTP app. Start-up loads no model and opens no store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastmcp import FastMCP
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from knowledge.service import KnowledgeService
from mcp_server.auth import BearerAuth
from mcp_server.body_limit import BodyLimit
from mcp_server.metrics import declare_tools
from mcp_server.middleware import ToolCallMiddleware
from mcp_server.runtime import Runtime
from mcp_server.settings import ServerSettings
from mcp_server.tools import TOOL_NAMES, register_tools

INSTRUCTIONS = (
    "A knowledge base of text passages searchable by meaning. Store passages with "
    "qdrant_store (batch them with 'documents', give each a metadata 'source'), and search "
    "them with qdrant_find (filter on metadata, page with offset/next_offset)."
)


def build_server(settings: ServerSettings, runtime: Runtime | None = None) -> FastMCP:
    runtime = runtime or Runtime(settings)

    @asynccontextmanager
    async def lifespan(_server: FastMCP) -> AsyncIterator[dict[str, Any]]:
        runtime.start()
        try:
            yield {}
        finally:
            await runtime.stop()

    mcp = FastMCP(
        "shield-mcp",
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        middleware=[ToolCallMiddleware(TOOL_NAMES)],
        mask_error_details=True,
    )

    def service() -> KnowledgeService:
        return runtime.start()

    register_tools(mcp, service, settings.max_limit)
    declare_tools(TOOL_NAMES)

    @mcp.custom_route("/health", methods=["GET"])
    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @mcp.custom_route("/metrics", methods=["GET"])
    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return mcp


def build_http_app(mcp: FastMCP, settings: ServerSettings) -> ASGIApp:
    # "auto" checks Host and Origin on a loopback-bound server: without it any web page
    # the user opens could reach the knowledge base through DNS rebinding.
    app: ASGIApp = mcp.http_app(path="/mcp", host_origin_protection="auto")
    app = BodyLimit(app, settings.max_request_bytes)
    if settings.mcp_token is not None:
        app = BearerAuth(app, settings.mcp_token.get_secret_value())
    return app
