"""The ingestion tools: they hand work to the orchestrator and answer with a job id at once.

No `from __future__ import annotations` here: FastMCP evaluates the signatures.
"""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field, ValidationError

from mcp_server.middleware import describe_errors
from mcp_server.models import JobAcceptedOutput, JobStatusOutput
from mcp_server.tools import CollectionArg, translated_errors
from orchestrator_client.models import CrawlRequest, DocumentRequest, Job, JobAccepted

if TYPE_CHECKING:
    from orchestrator_client.client import OrchestratorClient

INGEST_TOOL_NAMES = ["crawl_web", "ingest_doc", "get_job_status"]
MAX_STATUS_WAIT = 30

_HINTS = {
    "queued": "Waiting for a worker. Call get_job_status again in a few seconds.",
    "running": "In progress. Call get_job_status again in a few seconds "
    "(wait_seconds makes it wait for the next change).",
    "succeeded": "Done: search the new content with qdrant_find.",
    "failed": "The job failed; error.message says why and what to change.",
    "cancelled": "The job was cancelled.",
}


def _accepted(accepted: JobAccepted) -> JobAcceptedOutput:
    follow = (
        f"Call get_job_status with job_id {accepted.job_id!r} to follow it, then search "
        "with qdrant_find once it succeeded."
    )
    if accepted.reused:
        hint = (
            f"The same request is already {accepted.status.value} as job "
            f"{accepted.job_id!r}; no second job was started. {follow}"
        )
    else:
        hint = f"Accepted; it runs in the background. {follow}"
    return JobAcceptedOutput(
        job_id=accepted.job_id,
        status=accepted.status.value,
        track_url=accepted.track_url,
        events_url=accepted.events_url,
        reused=accepted.reused,
        hint=hint,
    )


def _status(job: Job) -> JobStatusOutput:
    return JobStatusOutput(
        job_id=job.job_id,
        kind=job.kind.value,
        status=job.status.value,
        progress=job.progress.model_dump(),
        result=job.result.model_dump() if job.result else None,
        error=job.error.model_dump() if job.error else None,
        attempts=job.attempts,
        created_at=job.created_at.isoformat(),
        updated_at=job.updated_at.isoformat(),
        finished_at=job.finished_at.isoformat() if job.finished_at else None,
        hint=_HINTS[job.status.value],
    )


def register_ingest_tools(
    mcp: FastMCP, client: Callable[[], Awaitable["OrchestratorClient"]]
) -> None:
    @mcp.tool(
        annotations=ToolAnnotations(
            title="Crawl a website into the knowledge base",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,  # every call starts a job (unchanged pages are skipped)
            open_world_hint=True,
        ),
    )
    async def crawl_web(
        url: Annotated[str, Field(description="Start page, http:// or https://.")],
        max_pages: Annotated[
            int, Field(ge=1, description="Fetch at most this many pages (the server caps it).")
        ] = 10,
        max_depth: Annotated[
            int, Field(ge=0, le=10, description="Follow links this many hops from the start.")
        ] = 2,
        allowed_domains: Annotated[
            list[str] | None,
            Field(description="Hosts the crawl may visit; default: the start page's host."),
        ] = None,
        collection: CollectionArg = None,
        mode: Annotated[
            Literal["http", "browser"] | None,
            Field(
                description="'browser' renders JavaScript (slower); default: the server's "
                "setting, usually plain 'http'."
            ),
        ] = None,
    ) -> JobAcceptedOutput:
        """Crawl a website (following its links) and add its pages to the knowledge base.

        Answers at once with a job id; the crawl runs in the background. Follow it with
        get_job_status, then search the pages with qdrant_find. Pages already stored
        unchanged are skipped, so re-crawling a site refreshes it cheaply.
        """
        with translated_errors("crawl_web"):
            try:
                request = CrawlRequest(
                    url=url,
                    max_pages=max_pages,
                    max_depth=max_depth,
                    allowed_domains=allowed_domains,
                    collection=collection,
                    mode=mode,
                )
            except ValidationError as exc:
                raise ToolError(describe_errors(exc.errors())) from None
            return _accepted(await (await client()).submit(request))

    @mcp.tool(
        annotations=ToolAnnotations(
            title="Add a document to the knowledge base",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        ),
    )
    async def ingest_doc(
        source: Annotated[
            str | None,
            Field(
                description="A file path the server may read (inside its SHIELD_INGEST_ROOTS) "
                "or an http(s) URL of a document."
            ),
        ] = None,
        content_base64: Annotated[
            str | None,
            Field(description="The document's bytes, base64-encoded, instead of a source."),
        ] = None,
        filename: Annotated[
            str | None,
            Field(description="File name for content_base64, e.g. 'report.pdf'."),
        ] = None,
        doc_type: Annotated[
            Literal["pdf", "docx", "pptx", "xlsx", "html", "md", "csv", "txt"] | None,
            Field(description="Expected type; default: detected from the content."),
        ] = None,
        collection: CollectionArg = None,
        metadata: Annotated[
            dict[str, Any] | None,
            Field(description='Added to every passage, e.g. {"team": "ops"}.'),
        ] = None,
    ) -> JobAcceptedOutput:
        """Convert a document (PDF, DOCX, PPTX, XLSX, HTML, Markdown, CSV, TXT) into passages
        and add them to the knowledge base.

        Give either source (a path or URL) or content_base64 with filename. Answers at once
        with a job id; follow it with get_job_status, then search with qdrant_find.
        """
        with translated_errors("ingest_doc"):
            try:
                request = DocumentRequest.model_validate(
                    {
                        "source": source,
                        "content_base64": content_base64,
                        "filename": filename,
                        "doc_type": doc_type,
                        "collection": collection,
                        "metadata": metadata or {},
                    }
                )
            except ValidationError as exc:
                raise ToolError(describe_errors(exc.errors())) from None
            return _accepted(await (await client()).submit(request))

    @mcp.tool(
        annotations=ToolAnnotations(
            title="Job status",
            read_only_hint=True,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def get_job_status(
        job_id: Annotated[
            str,
            Field(min_length=1, max_length=100, description="The id crawl_web/ingest_doc gave."),
        ],
        wait_seconds: Annotated[
            int,
            Field(
                ge=0,
                le=MAX_STATUS_WAIT,
                description="Wait up to this long for the job to change before answering.",
            ),
        ] = 0,
    ) -> JobStatusOutput:
        """Report a crawl_web or ingest_doc job: status, progress, and its result or error."""
        with translated_errors("get_job_status"):
            job = await (await client()).get_job(job_id, wait=wait_seconds or None)
        return _status(job)
