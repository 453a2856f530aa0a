"""The pipeline's two entry points: validate a request (accept path), run a job (worker).

Crawls belong to ``crawl.job`` and documents to ``document.job``; both are imported when a
request of their kind arrives, so neither drags its libraries into the other's path.
A LightRAG rebuild re-indexes what the collection's workspace already holds.
"""

from __future__ import annotations

from knowledge.errors import InvalidInput
from knowledge.validation import check_metadata
from knowledge.vectorstore.base import check_collection_name
from orchestrator.pipeline.config import PipelineConfig
from orchestrator.pipeline.context import JobContext
from orchestrator.pipeline.ingest import PIPELINE_KEYS
from orchestrator_client.models import (
    CrawlRequest,
    DocumentRequest,
    JobRequest,
    JobResult,
    Progress,
    RebuildRequest,
)

LIGHTRAG_OFF = (
    "LightRAG is off on this server (SHIELD_LIGHTRAG=false); turn it on to build or query "
    "its graph."
)


def _check_common(request: JobRequest, config: PipelineConfig) -> None:
    if request.collection is not None:
        name = check_collection_name(request.collection)
        if config.embedded_store and name != name.lower():
            # The embedded store keeps collections in directories (see vectorstore/edge.py);
            # refusing here beats failing the job later.
            raise InvalidInput(
                f"Collection name {name!r}: the embedded store keeps collections in "
                f"directories, so names are lowercase; use {name.lower()!r}."
            )
    check_metadata("metadata", request.metadata)
    clashes = sorted(PIPELINE_KEYS & set(request.metadata))
    if clashes:
        raise InvalidInput(
            f"metadata keys {', '.join(clashes)} are set by the pipeline on every chunk "
            f"(reserved: {', '.join(sorted(PIPELINE_KEYS))}); rename yours, e.g. "
            f"'{clashes[0]}_note'."
        )


async def validate_request(request: JobRequest, config: PipelineConfig) -> None:
    """Refuse a request that cannot succeed, before it is queued (InvalidInput)."""
    _check_common(request, config)
    if isinstance(request, RebuildRequest):
        if not config.lightrag:
            raise InvalidInput(LIGHTRAG_OFF)
        if request.metadata:
            raise InvalidInput("A LightRAG rebuild takes no metadata; send only collection.")
    elif isinstance(request, DocumentRequest):
        from orchestrator.pipeline.document.job import validate_document

        await validate_document(request, config)
    else:
        from orchestrator.pipeline.crawl.job import validate_crawl

        await validate_crawl(request, config)


async def run_job(request: JobRequest, ctx: JobContext) -> JobResult:
    """Run one job's pipeline; raises the domain errors of orchestrator/errors.py."""
    with ctx.stages.listening():
        if isinstance(request, RebuildRequest):
            with ctx.stages.stage("lightrag"):
                return await _rebuild(request, ctx)
        if isinstance(request, DocumentRequest):
            from orchestrator.pipeline.document.job import run_document

            return await run_document(request, ctx)
        assert isinstance(request, CrawlRequest)
        from orchestrator.pipeline.crawl.job import run_crawl

        return await run_crawl(request, ctx)


async def _rebuild(request: RebuildRequest, ctx: JobContext) -> JobResult:
    if ctx.graph is None:
        raise InvalidInput(LIGHTRAG_OFF)
    collection = ctx.graph.collection(request.collection)

    async def progress(done: int, total: int) -> None:
        await ctx.checkpoint()
        await ctx.report(Progress(stage="indexing", done=done, total=total))

    report = await ctx.graph.rebuild(collection, progress)
    return JobResult(collection=collection, documents=report.documents_indexed, lightrag=report)
