"""An ``ingest_doc`` job: load the document, check what it is, convert, chunk, store.

``validate_document`` runs on the request path and is cheap (no reading, no converting);
``run_document`` runs in a worker and re-checks everything, because time passes between
the two (a file may change, a link may be swapped in).
"""

from __future__ import annotations

import asyncio
import hashlib
import time

from orchestrator.pipeline.config import PipelineConfig
from orchestrator.pipeline.context import JobContext
from orchestrator.pipeline.document import filetypes, sources
from orchestrator.pipeline.document.sources import Loaded
from orchestrator.pipeline.graph_feed import GraphFeed
from orchestrator.pipeline.ingest import IngestCounts, ingest_chunks
from orchestrator_client.models import DocumentRequest, JobResult, Progress


async def validate_document(request: DocumentRequest, config: PipelineConfig) -> None:
    """Refuse what can be refused without doing the work (InvalidInput, actionable)."""
    if request.content_base64 is not None:
        assert request.filename is not None  # the model requires it with content_base64
        # Decoding is what proves the content is base64 and within the limit; it is
        # bounded by the request size and costs milliseconds.
        await asyncio.to_thread(
            sources.decode_upload, request.content_base64, request.filename, config
        )
        return
    assert request.source is not None
    source = request.source.strip()
    if sources.is_url(source):
        from orchestrator.pipeline.netsafety import check_url

        await check_url(source, allow_private=config.crawl_allow_private)
        return

    def check_path() -> None:
        path = sources.resolve_path(source, config)
        sources.check_path_size(path, source, config)

    await asyncio.to_thread(check_path)


async def _load(request: DocumentRequest, ctx: JobContext) -> Loaded:
    config = ctx.config
    if request.content_base64 is not None:
        assert request.filename is not None
        return await asyncio.to_thread(
            sources.decode_upload, request.content_base64, request.filename, config
        )
    assert request.source is not None
    source = request.source.strip()
    if not sources.is_url(source):
        return await asyncio.to_thread(sources.read_path, source, config)
    from orchestrator.pipeline.document.fetch import fetch_url

    await ctx.report(Progress(stage="fetching", done=0, total=1))
    fetched = await fetch_url(
        source,
        max_bytes=config.max_document_bytes,
        timeout=config.fetch_timeout,
        allow_private=config.crawl_allow_private,
    )
    await ctx.report(Progress(stage="fetching", done=1, total=1))
    name = sources.url_filename(fetched.url, fetched.content_type)
    return Loaded(data=fetched.content, filename=name, source=fetched.url)


def content_hash_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def run_document(request: DocumentRequest, ctx: JobContext) -> JobResult:
    with ctx.stages.stage("fetch"):
        loaded = await _load(request, ctx)
    await ctx.checkpoint()
    start = time.perf_counter()
    chunk_seconds = 0.0
    try:
        # Off the event loop: checking a package reads the start of each of its parts.
        detected = await asyncio.to_thread(
            filetypes.detect, loaded.data, loaded.filename, request.doc_type
        )
        await ctx.report(Progress(stage="converting", done=0, total=1))
        converted = await ctx.converter.convert(detected.data, loaded.filename, detected.doc_type)
        chunk_seconds = converted.chunk_seconds
    finally:
        # The converter's child converts and chunks in one request, and says how long the
        # chunking took; a conversion that failed or timed out took its time too.
        ctx.stages.add("convert", time.perf_counter() - start - chunk_seconds)
        if chunk_seconds:
            ctx.stages.add("chunk", chunk_seconds)
    await ctx.report(Progress(stage="converting", done=1, total=1))
    await ctx.checkpoint()
    collection = request.collection or ctx.service.default_collection
    feed = GraphFeed(ctx, collection)
    title = converted.title or loaded.filename
    # An upload's name is not one document over time (see Loaded): its bytes are.
    identity = (
        None if loaded.replaces_earlier else f"{loaded.source}@{content_hash_of(loaded.data)}"
    )

    async def to_lightrag(counts: IngestCounts) -> None:
        await feed.add(loaded.source, title, converted.chunks, counts.vectors, identity=identity)
        await feed.flush()

    counts = await ingest_chunks(
        ctx,
        converted.chunks,
        collection=request.collection,
        source=loaded.source,
        title=title,
        metadata=request.metadata,
        remove_stale=loaded.replaces_earlier,
        then=to_lightrag,
    )
    return JobResult(
        collection=collection,
        documents=1,
        chunks_stored=counts.stored,
        chunks_skipped_unchanged=counts.skipped,
        chunks_metadata_updated=counts.updated,
        chunks_removed_stale=counts.removed,
        converter=converted.converter,
        lightrag=await feed.finish(),
    )
