"""Bearer-token auth for every HTTP route but the liveness probe.

An ASGI wrapper around the whole app rather than FastMCP's auth: FastMCP's custom
routes (/metrics) are not behind its auth, and one check in one place is easier to trust.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_server.asgi_reply import send_json

OPEN_PATHS = frozenset({"/health"})


class BearerAuth:
    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        supplied = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, credentials = supplied.partition(b" ")
        # The scheme is case-insensitive (RFC 7235); the token is compared in constant time.
        if scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self._expected):
            await self.app(scope, receive, send)
            return
        await send_json(
            send,
            401,
            {
                "error": "unauthorized",
                "message": "Send the header 'Authorization: Bearer <SHIELD_MCP_TOKEN>'.",
            },
            headers=((b"www-authenticate", b'Bearer realm="shield-mcp"'),),
        )
