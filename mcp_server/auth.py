"""The MCP server's answers for the shared HTTP guards: bearer auth and the body cap.

One ASGI wrapper around the whole app rather than FastMCP's auth: FastMCP's custom routes
(/metrics) are not behind its auth, and one check in one place is easier to trust. The
guards themselves (orchestrator/http/guards.py) are plain Starlette, shared with the
orchestrator's API.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Send

from orchestrator.http.guards import BearerAuth, BodyLimit, send_json


async def _unauthorized(send: Send, _supplied: bool) -> None:
    await send_json(
        send,
        401,
        {
            "error": "unauthorized",
            "message": "Send the header 'Authorization: Bearer <SHIELD_MCP_TOKEN>'.",
        },
        headers=((b"www-authenticate", b'Bearer realm="shield-mcp"'),),
    )


async def _too_large(send: Send, max_bytes: int) -> None:
    await send_json(
        send,
        413,
        {
            "error": "request_too_large",
            "message": f"Request bodies are limited to {max_bytes} bytes "
            "(SHIELD_MAX_REQUEST_BYTES); send fewer or shorter documents per call.",
        },
    )


def require_token(app: ASGIApp, token: str) -> ASGIApp:
    return BearerAuth(app, token, refuse=_unauthorized)


def limit_body(app: ASGIApp, max_bytes: int) -> ASGIApp:
    return BodyLimit(app, max_bytes, refuse=_too_large)
