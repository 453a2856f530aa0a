"""``POST /lightrag/query`` and ``POST /lightrag/rebuild``: parse, call, shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Body, FastAPI, Response
from fastapi.params import Depends as DependsParam

from orchestrator_client.graph_models import LightRAGAnswer, LightRAGQuery
from orchestrator_client.models import ErrorBody, JobAccepted, RebuildRequest

if TYPE_CHECKING:
    from orchestrator.graphrag.service import GraphService
    from orchestrator.jobs.service import JobService

# The process's LightRAG, or DependencyUnavailable saying why it has none.
GraphAccess = Callable[[], "GraphService"]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


def register_lightrag_routes(
    app: FastAPI,
    jobs: JobService,
    graph: GraphAccess,
    *,
    secured: list[DependsParam],
    auth_errors: dict[int | str, dict[str, Any]],
) -> None:
    @app.post(
        "/lightrag/query",
        response_model=LightRAGAnswer,
        response_model_exclude_none=True,
        dependencies=secured,
        summary="Ask a collection's LightRAG (graph + vector retrieval)",
        tags=["lightrag"],
        responses={**auth_errors, **_errors(413, 422, 502, 503)},
    )
    async def lightrag_query(request: Annotated[LightRAGQuery, Body()]) -> LightRAGAnswer:
        """Entities, relations and passages for the question, each with its real sources;
        with an LLM configured and ``only_context`` false, its answer too. Graph modes
        without an LLM need ``keywords``."""
        return await graph().query(request)

    @app.post(
        "/lightrag/rebuild",
        status_code=202,
        response_model=JobAccepted,
        dependencies=secured,
        summary="Index a collection's sources in LightRAG again (a job)",
        tags=["lightrag"],
        responses={
            200: {
                "model": JobAccepted,
                "description": "A rebuild of this collection is still queued or running: "
                "that job (reused: true), no new one.",
            },
            **auth_errors,
            **_errors(413, 422, 503),
        },
    )
    async def lightrag_rebuild(
        request: Annotated[RebuildRequest, Body()], response: Response
    ) -> JobAccepted:
        """With an LLM configured after ingestion, this builds the graph of what is
        already stored. Answers at once with the job to follow."""
        job, created = await jobs.submit(request)
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
