"""Bearer-token auth for every route but the liveness probe (SHIELD_ORCHESTRATOR_TOKEN).

An ASGI middleware rather than a FastAPI dependency: it answers before the body is read or
parsed, and it covers every path (unknown ones and /openapi.json too). The OpenAPI schema
learns about the scheme through ``documented_bearer``, a dependency that checks nothing.
"""

from __future__ import annotations

import hmac

from fastapi.security import HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator.http.replies import send_error

OPEN_PATHS = frozenset({"/health"})

documented_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="The orchestrator's SHIELD_ORCHESTRATOR_TOKEN.",
)


class BearerAuth:
    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        supplied = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, credentials = supplied.strip().partition(b" ")
        # The scheme is case-insensitive (RFC 7235); the token is compared in constant time.
        if scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self._expected):
            await self.app(scope, receive, send)
            return
        message = (
            "The bearer token is not the orchestrator's; check SHIELD_ORCHESTRATOR_TOKEN."
            if supplied
            else "Send the header 'Authorization: Bearer <SHIELD_ORCHESTRATOR_TOKEN>'."
        )
        await send_error(
            send,
            401,
            "unauthorized",
            message,
            headers=((b"www-authenticate", b'Bearer realm="shield-orchestrator"'),),
        )
