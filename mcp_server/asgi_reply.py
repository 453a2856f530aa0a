"""A JSON error answer sent straight from ASGI middleware (before the app is reached)."""

from __future__ import annotations

import json

from starlette.types import Send


async def send_json(
    send: Send,
    status: int,
    payload: dict[str, str],
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
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
