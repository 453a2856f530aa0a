"""ASGI guards both HTTP surfaces share: bearer auth and a body cap, answering in JSON.

Plain Starlette, no FastAPI: the MCP server wraps its own app with these too, and it must
start without the orchestrator's extra installed. Each surface says in its own words (and
its own error shape) what to do, through the ``refuse`` callbacks.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

OPEN_PATHS = frozenset({"/health"})

# (send, whether the request carried an Authorization header at all)
AuthRefusal = Callable[[Send, bool], Awaitable[None]]
# (scope, send, the cap in bytes): the refusal may answer in the shape its path speaks
SizeRefusal = Callable[[Scope, Send, int], Awaitable[None]]


async def send_json(
    send: Send,
    status: int,
    payload: object,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """A JSON answer sent straight from ASGI middleware, before any app is reached."""
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BearerAuth:
    """Every path but the liveness probe needs ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str, *, refuse: AuthRefusal) -> None:
        self.app = app
        self._expected = token.encode()
        self._refuse = refuse

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
        await self._refuse(send, bool(supplied))


class BodyLimit:
    """Refuses (413) a request body over ``max_bytes`` before the app reads or parses it."""

    def __init__(self, app: ASGIApp, max_bytes: int, *, refuse: SizeRefusal) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self._refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            # The server holds the client to its declared length, so checking it suffices.
            if length.strip().isdigit() and int(length) > self.max_bytes:
                await self._refuse(scope, send, self.max_bytes)
                return
            await self.app(scope, receive, send)
            return
        # No length (chunked): read it all here, up to the cap, and replay it to the app.
        # Refusing midway through the app's own read would be too late to answer 413.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._refuse(scope, send, self.max_bytes)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
