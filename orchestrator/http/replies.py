"""Error answers in the one shape every 4xx/5xx of the orchestrator has: ``ErrorBody``;
and the readiness answer of the orchestrator and its workers."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

from starlette.responses import JSONResponse
from starlette.types import Send

from orchestrator_client.models import ErrorBody, JobError
from shield_common.guards import send_json
from shield_common.probes import readiness_answer

# Component -> "ok" or what is wrong (the runtime's dependency probes).
ReadinessCheck = Callable[[], Awaitable[dict[str, str]]]

READY_TIMEOUT_SECONDS = 10.0

log = logging.getLogger("shield.orchestrator.http")


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


async def ready_response(readiness: ReadinessCheck, process: str) -> JSONResponse:
    """``GET /ready`` of the orchestrator or a worker (``process`` names whose log to read)."""
    try:
        components = await asyncio.wait_for(readiness(), timeout=READY_TIMEOUT_SECONDS)
    except TimeoutError:
        components = {"readiness": f"no answer within {READY_TIMEOUT_SECONDS:g} s"}
    except Exception as exc:
        # The details (which may hold a URL with credentials) go to the log only.
        log.exception("readiness check failed")
        components = {"readiness": f"check failed ({type(exc).__name__}); see the {process} log"}
    status, body = readiness_answer(components)
    headers = retry_after_header(None) if status != 200 else None
    return JSONResponse(body, status_code=status, headers=headers)
