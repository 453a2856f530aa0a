"""The orchestrator's answers for the shared guards (SHIELD_ORCHESTRATOR_TOKEN, body cap).

The guards are ASGI middleware (``shield_common/guards.py``) rather than FastAPI
dependencies: they answer before the body is read or parsed, and cover every path (unknown
ones and /openapi.json too). The OpenAPI schema learns about the scheme through
``documented_bearer``, a dependency that checks nothing.
"""

from __future__ import annotations

from fastapi.security import HTTPBearer
from starlette.types import Scope, Send

from orchestrator.http.replies import send_error

documented_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="The orchestrator's SHIELD_ORCHESTRATOR_TOKEN.",
)


async def refuse_unauthorized(send: Send, supplied: bool) -> None:
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


async def refuse_too_large(_scope: Scope, send: Send, max_bytes: int) -> None:
    await send_error(
        send,
        413,
        "request_too_large",
        f"Request bodies are limited to {max_bytes} bytes; uploads to "
        "SHIELD_MAX_UPLOAD_BYTES of decoded content. Send a larger file by path "
        "(inside SHIELD_INGEST_ROOTS) or by URL instead.",
    )
