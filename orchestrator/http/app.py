"""Builds the orchestrator's FastAPI app around a job service that its owner starts and stops.

The owner is the ``shield-mcp orchestrator`` process (uvicorn) or, in the embedded default,
the MCP server, which reaches this same app through ``httpx.ASGITransport``: so nothing here
relies on the ASGI lifespan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI
from fastapi.params import Depends as DependsParam

from orchestrator.http.auth import documented_bearer, refuse_too_large, refuse_unauthorized
from orchestrator.http.errors import GuardedRoute, install_error_handlers
from orchestrator.http.lightrag_routes import GraphAccess, register_lightrag_routes
from orchestrator.http.metrics import RequestMetrics, declare_endpoints
from orchestrator.http.openapi import ServerBounds, state_bounds
from orchestrator.http.replies import ReadinessCheck
from orchestrator.http.routes import register_routes
from orchestrator_client.models import ErrorBody
from shield_common.guards import BearerAuth, BodyLimit

if TYPE_CHECKING:
    from orchestrator.jobs.service import JobService

TITLE = "shield-mcp orchestrator"


def build_app(
    jobs: JobService,
    readiness: ReadinessCheck,
    graph: GraphAccess,
    *,
    max_wait_seconds: float,
    max_body_bytes: int,
    token: str | None = None,
    bounds: ServerBounds | None = None,
) -> FastAPI:
    """The API over ``jobs``; ``token`` set = every route but /health needs it. ``bounds``:
    the limits of this server's settings, stated in its OpenAPI schema."""
    app = FastAPI(
        title=TITLE,
        version="1",
        description="Accepts crawl and document ingestion jobs (202), runs them in workers, "
        "and reports their state (poll, long-poll or server-sent events); answers LightRAG "
        "queries over what they stored.",
    )
    app.router.route_class = GuardedRoute
    install_error_handlers(app)
    register_routes(
        app,
        jobs,
        readiness,
        max_wait_seconds=max_wait_seconds,
        token_required=token is not None,
    )
    secured: list[DependsParam] = [Depends(documented_bearer)] if token is not None else []
    register_lightrag_routes(
        app,
        jobs,
        graph,
        secured=secured,
        auth_errors={401: {"model": ErrorBody}} if secured else {},
    )
    state_bounds(app, bounds or ServerBounds(max_body_bytes=max_body_bytes))
    # Added last = outermost: metrics see every answer, auth answers before the body is read.
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, refuse=refuse_too_large)
    if token is not None:
        app.add_middleware(BearerAuth, token=token, refuse=refuse_unauthorized)
    app.add_middleware(RequestMetrics)
    declare_endpoints(app.routes)
    return app
