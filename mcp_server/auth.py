"""The MCP server's answers for the shared HTTP guards: bearer auth and the body cap.

One ASGI wrapper around the whole app rather than FastMCP's auth: FastMCP's custom routes
(/metrics) are not behind its auth, and one check in one place is easier to trust. The
guards themselves (shield_common/guards.py) are plain Starlette, shared with the
orchestrator's API.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Scope, Send

from shield_common.guards import BearerAuth, BodyLimit, send_json

MCP_PATH = "/mcp"


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


def too_large_message(max_bytes: int) -> str:
    return (
        f"Request too large: this server takes at most {max_bytes} bytes per request "
        "(SHIELD_MAX_REQUEST_BYTES). Send fewer or shorter documents per qdrant_store call; "
        "for a large file, put it in a directory listed in SHIELD_INGEST_ROOTS and give its "
        "path as ingest_doc's source, or give its URL."
    )


async def _too_large(scope: Scope, send: Send, max_bytes: int) -> None:
    if str(scope.get("path", "")).startswith(MCP_PATH):
        # A JSON-RPC error: MCP clients show its message (a bare 413 becomes "Server
        # returned an error response"). The id is unknown without reading the body; the
        # SDK client puts its request's own id on a null one.
        payload: dict[str, object] = {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32600, "message": too_large_message(max_bytes)},
        }
    else:
        payload = {"error": "request_too_large", "message": too_large_message(max_bytes)}
    await send_json(send, 413, payload)


def require_token(app: ASGIApp, token: str) -> ASGIApp:
    return BearerAuth(app, token, refuse=_unauthorized)


def limit_body(app: ASGIApp, max_bytes: int) -> ASGIApp:
    return BodyLimit(app, max_bytes, refuse=_too_large)
