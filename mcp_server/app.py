"""Builds the FastMCP server and its HTTP app. Start-up loads no model and opens no store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastmcp import FastMCP
from fastmcp.server.middleware import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from mcp_server.auth import MCP_PATH, limit_body, require_token
from mcp_server.body_cap import raise_sdk_body_cap
from mcp_server.ingest_tools import INGEST_TOOL_NAMES, register_ingest_tools
from mcp_server.lightrag_tool import LIGHTRAG_TOOL_NAMES, register_lightrag_tool
from mcp_server.metrics import declare_tools
from mcp_server.middleware import OperationMetrics, ToolCallMiddleware, Unavailable
from mcp_server.orchestrator_routes import OrchestratorRoutes
from mcp_server.parts import ServerParts
from mcp_server.ready import add_ready_route
from mcp_server.tools import TOOL_NAMES, register_tools

INSTRUCTIONS = (
    "A knowledge base of text passages searchable by meaning. Store passages with "
    "qdrant_store (batch them with 'documents', give each a metadata 'source'), and search "
    "them with qdrant_find (filter on metadata, page with offset/next_offset). Add whole "
    "websites with crawl_web and documents with ingest_doc: both answer at once with a job "
    "id; follow it with get_job_status until it succeeded, then search. For questions whose "
    "answer spans many pages, lightrag_query retrieves the entities and relations behind "
    "the passages (and, with an LLM on the server, writes an answer)."
)
ALL_TOOLS = TOOL_NAMES + INGEST_TOOL_NAMES + LIGHTRAG_TOOL_NAMES


def build_server(parts: ServerParts, *, max_limit: int, unavailable: str | None = None) -> FastMCP:
    """The MCP server over ``parts``; with ``unavailable``, one that lists its tools but
    answers every call with that message (a stdio client shows it; an exit shows only
    "Connection closed")."""

    @asynccontextmanager
    async def lifespan(_server: FastMCP) -> AsyncIterator[dict[str, Any]]:
        if unavailable is not None:
            yield {}  # nothing was started, nothing to stop
            return
        parts.service()  # fails at once if the data dir is taken
        parts.start_orchestrator()
        parts.start_probes()
        try:
            yield {}
        finally:
            await parts.stop()

    middleware: list[Middleware] = [OperationMetrics(ALL_TOOLS), ToolCallMiddleware(ALL_TOOLS)]
    instructions = INSTRUCTIONS
    if unavailable is not None:
        # Inside the metrics middleware: the refused calls are still counted and logged.
        middleware.append(Unavailable(unavailable))
        instructions = f"This server cannot work: {unavailable}\n\n{INSTRUCTIONS}"
    mcp = FastMCP(
        "shield-mcp",
        instructions=instructions,
        lifespan=lifespan,
        middleware=middleware,
        mask_error_details=True,
    )

    register_tools(mcp, parts.service, max_limit)
    register_ingest_tools(mcp, parts.orchestrator.client)
    register_lightrag_tool(mcp, parts.orchestrator.client)
    declare_tools(ALL_TOOLS)

    @mcp.custom_route("/health", methods=["GET"])
    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    if parts.probes is not None:
        add_ready_route(mcp, parts.probes)

    @mcp.custom_route("/metrics", methods=["GET"])
    async def metrics(_request: Request) -> Response:
        await parts.orchestrator.refresh_metrics()
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return mcp


def build_http_app(
    mcp: FastMCP,
    parts: ServerParts,
    *,
    token: str | None,
    max_request_bytes: int,
    allow_unauthenticated: bool = False,
) -> ASGIApp:
    # "auto" checks Host and Origin on a loopback-bound server: without it any web page
    # the user opens could reach the knowledge base through DNS rebinding.
    mcp_app = mcp.http_app(path=MCP_PATH, host_origin_protection="auto")
    raise_sdk_body_cap(mcp_app, max_request_bytes)
    app: ASGIApp = mcp_app
    if parts.orchestrator.embedded:
        app = OrchestratorRoutes(
            app,
            parts.orchestrator.app,
            loopback_only=token is None and not allow_unauthenticated,
        )
    app = limit_body(app, max_request_bytes)
    if token is not None:
        app = require_token(app, token)
    return app
