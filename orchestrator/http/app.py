"""Builds the orchestrator's FastAPI app around a runtime that its owner starts and stops.

The owner is the ``shield-mcp orchestrator`` process (uvicorn) or, in the embedded default,
the MCP server, which reaches this same app through ``httpx.ASGITransport``: so nothing here
relies on the ASGI lifespan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from orchestrator.http.auth import refuse_too_large, refuse_unauthorized
from orchestrator.http.errors import GuardedRoute, install_error_handlers
from orchestrator.http.guards import BearerAuth, BodyLimit
from orchestrator.http.metrics import RequestMetrics
from orchestrator.http.routes import register_routes
from orchestrator.settings import OrchestratorSettings, upload_request_bytes

if TYPE_CHECKING:
    from orchestrator.runtime import OrchestratorRuntime

TITLE = "shield-mcp orchestrator"


def max_body_bytes(settings: OrchestratorSettings) -> int:
    return upload_request_bytes(settings.max_upload_bytes)


def build_app(runtime: OrchestratorRuntime, settings: OrchestratorSettings) -> FastAPI:
    app = FastAPI(
        title=TITLE,
        version="1",
        description="Accepts crawl and document ingestion jobs (202), runs them in workers, "
        "and reports their state (poll, long-poll or server-sent events).",
    )
    app.router.route_class = GuardedRoute
    install_error_handlers(app)
    register_routes(app, runtime, settings)
    # Added last = outermost: metrics see every answer, auth answers before the body is read.
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes(settings), refuse=refuse_too_large)
    if settings.orchestrator_token is not None:
        app.add_middleware(
            BearerAuth,
            token=settings.orchestrator_token.get_secret_value(),
            refuse=refuse_unauthorized,
        )
    app.add_middleware(RequestMetrics)
    return app
