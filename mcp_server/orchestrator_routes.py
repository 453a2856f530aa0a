"""In the embedded default, the MCP server's HTTP port also serves the orchestrator's job API.

Jobs run in this process, so ``track_url`` (``/jobs/{id}``) and ``events_url`` (SSE) must be
reachable here too: clients over streamable HTTP can then poll or stream a job without an MCP
call. The same bearer token as ``/mcp`` guards them (this wrapper sits inside the auth one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from shield_common.guards import send_json

PREFIXES = ("/jobs", "/ingest-async", "/ready")
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})


def _host_name(scope: Scope) -> str:
    headers: dict[bytes, bytes] = dict(scope.get("headers") or [])
    host = headers.get(b"host", b"").decode("latin-1")
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host


class OrchestratorRoutes:
    """Sends the job API's paths to the orchestrator app, everything else to the MCP app."""

    def __init__(
        self,
        app: ASGIApp,
        orchestrator_app: Callable[[], Awaitable[ASGIApp | None]],
        *,
        loopback_only: bool,
    ) -> None:
        self.app = app
        self.orchestrator_app = orchestrator_app
        # Without a token, only a loopback Host is served: a web page that rebinds its own
        # name to 127.0.0.1 must not be able to start crawls (the /mcp route has FastMCP's
        # own Host/Origin guard; these paths do not pass through it).
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(PREFIXES):
            await self.app(scope, receive, send)
            return
        if self.loopback_only and _host_name(scope) not in LOOPBACK_NAMES:
            await send_json(
                send,
                403,
                {
                    "error": "forbidden_host",
                    "message": "The job API answers only to a loopback Host without "
                    "SHIELD_MCP_TOKEN; set a token to serve it under another name.",
                },
            )
            return
        app = await self.orchestrator_app()
        if app is None:
            await send_json(
                send,
                503,
                {
                    "error": "orchestrator_unavailable",
                    "message": "The in-process orchestrator is not running; the server log "
                    "says why.",
                },
            )
            return
        await app(scope, receive, send)
