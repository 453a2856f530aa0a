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

from shield_common.probes import Prober, readiness_answer


def add_ready_route(mcp: FastMCP, probes: Prober) -> None:
    retry_after = str(max(1, math.ceil(probes.policy.interval)))

    @mcp.custom_route("/ready", methods=["GET"])
    async def ready(_request: Request) -> Response:
        status, body = readiness_answer(await probes.readiness())
        headers = {"Retry-After": retry_after} if status != 200 else None
        return JSONResponse(body, status_code=status, headers=headers)
