"""A job as a server-sent event stream: its state now, then one event per change.

Plain StreamingResponse rather than sse-starlette: the format is four lines, and the
orchestrator then needs nothing its own dependencies do not already bring.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.responses import StreamingResponse

from knowledge.errors import KnowledgeError
from orchestrator_client.models import ErrorBody, Job, JobError

if TYPE_CHECKING:
    from orchestrator.jobs.service import JobService

log = logging.getLogger("shield.orchestrator.http")

KEEPALIVE_SECONDS = 15.0
HEADERS = {
    "Cache-Control": "no-cache",
    # Reverse proxies (nginx) buffer responses by default, which would hold events back.
    "X-Accel-Buffering": "no",
}


def job_event(job: Job) -> bytes:
    return f"event: job\ndata: {job.model_dump_json()}\n\n".encode()


def error_event(code: str, message: str) -> bytes:
    body = ErrorBody(error=JobError(code=code, message=message))
    return f"event: error\ndata: {body.model_dump_json()}\n\n".encode()


async def job_stream(
    jobs: JobService, job: Job, keepalive: float = KEEPALIVE_SECONDS
) -> AsyncIterator[bytes]:
    """Ends after a terminal state. A client that hangs up cancels it (Starlette does that)."""
    yield job_event(job)
    try:
        while not job.status.terminal:
            latest = await jobs.wait(job.job_id, since=job.updated_at, timeout=keepalive)
            if latest != job:
                job = latest
                yield job_event(job)
            else:
                # A comment line: keeps proxies and idle timeouts from closing the stream.
                yield b": keep-alive\n\n"
    except KnowledgeError as exc:
        yield error_event(exc.code, str(exc))
    except Exception:
        # The response has started: a status code can no longer say it, the stream must.
        rid = uuid.uuid4().hex[:12]
        log.exception("internal error (request id %s) in the event stream of %s", rid, job.job_id)
        yield error_event("internal_error", f"internal error (request id {rid})")


def job_events_response(jobs: JobService, job: Job) -> StreamingResponse:
    return StreamingResponse(job_stream(jobs, job), media_type="text/event-stream", headers=HEADERS)
