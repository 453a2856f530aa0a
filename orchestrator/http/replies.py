"""Error answers in the one shape every 4xx/5xx of the orchestrator has: ``ErrorBody``."""

from __future__ import annotations

import math

from starlette.responses import JSONResponse
from starlette.types import Send

from orchestrator_client.models import ErrorBody, JobError
from shield_common.guards import send_json


def error_payload(code: str, message: str) -> dict[str, object]:
    return ErrorBody(error=JobError(code=code, message=message)).model_dump()


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_payload(code, message), status_code=status, headers=headers)


def retry_after_header(seconds: float | None, default: int = 5) -> dict[str, str]:
    """Retry-After takes whole seconds; round up so a client never retries too early."""
    value = default if seconds is None else max(1, math.ceil(seconds))
    return {"Retry-After": str(value)}


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    await send_json(send, status, error_payload(code, message), headers)
