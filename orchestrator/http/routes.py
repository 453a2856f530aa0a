"""The routes: parse, call the job service, shape. Names fixed by the design (DESIGN.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, Header, Path, Query, Response
from fastapi.params import Depends as DependsParam
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, StreamingResponse

from knowledge.errors import InvalidInput
from orchestrator.http.auth import documented_bearer
from orchestrator.http.events import job_events_response
from orchestrator.http.replies import ReadinessCheck, ready_response
from orchestrator.jobs.service import MAX_KEY_CHARS, MAX_OFFSET, MAX_PAGE
from orchestrator_client.models import (
    ErrorBody,
    IngestRequest,
    Job,
    JobAccepted,
    JobError,
    JobPage,
    JobStatus,
)

if TYPE_CHECKING:
    from orchestrator.jobs.service import JobService

MAX_JOB_ID_CHARS = 200
# What check_key accepts, as a header arrives (the server strips the value's outer blanks):
# printable characters of Latin-1, the header's character set.
_PRINTABLE = r"!-~\u00a1-\u00ac\u00ae-\u00ff"
KEY_PATTERN = rf"^[{_PRINTABLE}](?:[ {_PRINTABLE}]*[{_PRINTABLE}])?$"


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """200 when every component answers "ok"; the 503 also carries an ErrorBody's ``error``."""

    status: Literal["ready", "not_ready"]
    components: dict[str, str] = Field(description='Component -> "ok" or what is wrong.')
    error: JobError | None = None


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


JobId = Annotated[str, Path(min_length=1, max_length=MAX_JOB_ID_CHARS, description="Job id.")]


def register_routes(
    app: FastAPI,
    jobs: JobService,
    readiness: ReadinessCheck,
    *,
    max_wait_seconds: float,
    token_required: bool,
) -> None:
    # Auth itself is an ASGI middleware (auth.py); this only puts the scheme in the schema.
    secured: list[DependsParam] = [Depends(documented_bearer)] if token_required else []
    auth_errors = _errors(401) if secured else {}

    @app.post(
        "/ingest-async",
        status_code=202,
        response_model=JobAccepted,
        dependencies=secured,
        summary="Accept a crawl or document job",
        responses={
            200: {
                "model": JobAccepted,
                "description": "A repeated Idempotency-Key, or a request identical to a job still "
                "queued or running: that job (reused: true), no new one.",
            },
            **auth_errors,
            **_errors(409, 413, 422, 503),
        },
    )
    async def ingest_async(
        request: Annotated[IngestRequest, Body()],
        response: Response,
        idempotency_key: Annotated[
            str | None,
            Header(
                min_length=1,
                max_length=MAX_KEY_CHARS,
                pattern=KEY_PATTERN,
                description="Repeat a request with the same key to get the same job back "
                "(printable characters; a UUID is a good choice).",
            ),
        ] = None,
    ) -> JobAccepted:
        """Validates and stores the job, queues it and answers at once (202 + Location)."""
        job, created = await jobs.submit(request, idempotency_key=idempotency_key)
        track_url = f"/jobs/{job.job_id}"
        response.headers["Location"] = track_url
        if not created:
            response.status_code = 200
        return JobAccepted(
            job_id=job.job_id,
            status=job.status,
            track_url=track_url,
            events_url=f"{track_url}/events",
            reused=not created,
        )

    @app.get(
        "/jobs/{job_id}",
        response_model=Job,
        dependencies=secured,
        summary="A job's state (long-poll with ?wait=N)",
        responses={**auth_errors, **_errors(404, 422, 503)},
    )
    async def get_job(
        job_id: JobId,
        # A default rather than Annotated: the bound is this server's, and annotations
        # are strings here (they cannot see this function's locals). The schema states the
        # maximum; the check below enforces it with a message that says what to do.
        wait: float | None = Query(
            None,
            gt=0,
            json_schema_extra={"maximum": max_wait_seconds},
            description="Seconds to wait for the job to change before answering "
            "(at most the server's SHIELD_MAX_WAIT_SECONDS; poll again to wait longer).",
        ),
    ) -> Job:
        if wait is not None and wait > max_wait_seconds:
            raise InvalidInput(
                f"Invalid request: wait: at most {max_wait_seconds:g} seconds "
                f"(SHIELD_MAX_WAIT_SECONDS; got {wait:g}); poll again to wait longer."
            )
        job = await jobs.get(job_id)
        if wait is None or job.status.terminal:
            return job
        return await jobs.wait(job_id, since=job.updated_at, timeout=wait)

    @app.get(
        "/jobs/{job_id}/events",
        response_class=StreamingResponse,
        dependencies=secured,
        summary="Server-sent events: the job now, then each change, until it ends",
        responses={
            200: {
                "content": {"text/event-stream": {}},
                "description": "'event: job' lines whose data is the Job as JSON; "
                "keep-alive comments every 15 s; the stream ends after a terminal state.",
            },
            **auth_errors,
            **_errors(404, 422, 503),
        },
    )
    async def job_events(job_id: JobId) -> StreamingResponse:
        job = await jobs.get(job_id)  # before streaming: an unknown id is a 404
        return job_events_response(jobs, job)

    @app.delete(
        "/jobs/{job_id}",
        response_model=Job,
        dependencies=secured,
        summary="Cancel a job (cooperative: a running job stops at its next checkpoint)",
        responses={**auth_errors, **_errors(404, 409, 422, 503)},
    )
    async def cancel_job(job_id: JobId) -> Job:
        return await jobs.cancel(job_id)

    @app.get(
        "/jobs",
        response_model=JobPage,
        dependencies=secured,
        summary="Jobs, newest first, optionally of one status",
        responses={**auth_errors, **_errors(422, 503)},
    )
    async def list_jobs(
        status: Annotated[JobStatus | None, Query(description="Only jobs in this state.")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> JobPage:
        return await jobs.list(status=status, limit=limit, offset=offset)

    @app.get("/health", response_model=Health, summary="Liveness: the process answers")
    async def health() -> Health:
        return Health()

    @app.get(
        "/ready",
        response_model=Readiness,
        dependencies=secured,
        summary="Readiness: the probed dependencies (job store, queue; vector store and "
        "embedder where workers run) are up",
        responses={**auth_errors, 503: {"model": Readiness}},
    )
    async def ready() -> JSONResponse:
        """The dependency probes' states (hysteresis: one failed probe changes nothing), not
        a check made for this request; 503 names each dependency that is down."""
        return await ready_response(readiness, "orchestrator")

    @app.get(
        "/metrics",
        dependencies=secured,
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **auth_errors},
    )
    async def metrics() -> Response:
        await jobs.refresh_gauges()
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
