"""``GET /ready`` of an MCP server whose orchestrator runs elsewhere: its own probes.

Ready = the orchestrator, the vector store and the embedder are up, as the probes' states
say (shield_common/probes.py). The body has the orchestrator's readiness shape (status,
components, error), so one check fits both. In the embedded default ``/ready`` is the
in-process orchestrator's (orchestrator_routes.py) and this route is not added.
"""

from __future__ import annotations

import math

from fastmcp import FastMCP
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shield_common.probes import UP, Prober


def add_ready_route(mcp: FastMCP, probes: Prober) -> None:
    retry_after = str(max(1, math.ceil(probes.policy.interval)))

    @mcp.custom_route("/ready", methods=["GET"])
    async def ready(_request: Request) -> Response:
        components = await probes.readiness()
        broken = {name: state for name, state in components.items() if state != UP}
        if not broken:
            return JSONResponse({"status": "ready", "components": components, "error": None})
        message = "Not ready: " + "; ".join(f"{name}: {state}" for name, state in broken.items())
        body = {
            "status": "not_ready",
            "components": components,
            "error": {"code": "not_ready", "message": message},
        }
        return JSONResponse(body, status_code=503, headers={"Retry-After": retry_after})
