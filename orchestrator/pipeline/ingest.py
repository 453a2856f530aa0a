"""Chunks to vectors: embed in batches, upsert with metadata, skip what is already stored.

Every chunk's metadata is the request's metadata plus the pipeline's own keys
(``PIPELINE_KEYS``). The pipeline's keys win: ``source`` is part of the point id and the
others are provenance a user must be able to trust; ``dispatch.validate_request`` refuses a
request whose metadata uses one of them, so nothing is silently overwritten.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from knowledge.embeddings.base import Vector
from knowledge.service import Document
from knowledge.vectorstore.ids import content_hash
from orchestrator.pipeline.context import JobContext
from orchestrator.pipeline.convert.chunking import Chunk
from orchestrator_client.models import Progress

PIPELINE_KEYS = frozenset(
    {
        "source",
        "title",
        "headings",
        "page",
        "chunk_index",
        "chunk_count",
        "content_hash",
        "job_id",
        "ingested_at",
    }
)
# Provenance of the run that wrote a chunk: a chunk whose text and other metadata are
# unchanged is not stored again just because another job saw it.
VOLATILE_KEYS = frozenset({"job_id", "ingested_at"})
# A page's <title> and headings are whatever its site wrote: kept to what a person reads.
MAX_TITLE_CHARS = 500
MAX_HEADINGS = 16
# Chunks per embedding call: large enough to keep the embedder busy, small enough that a
# cancel request or a progress update is never far away.
BATCH = 64

# Two jobs storing the same source into the same collection at once must not interleave,
# or the one finishing last deletes the other's fresh passages as "stale" (and keeps a list
# of ids the other already deleted). They take turns on a lock named after both: within the
# process, and across worker processes when the job store is PostgreSQL
# (``ctx.source_locks``, see orchestrator/shared_locks.py).


def source_lock_name(collection: str, source: str) -> str:
    return f"{collection}\x00{source}"


@dataclass(frozen=True)
class IngestCounts:
    stored: int
    skipped: int  # already stored with the same text: not embedded again
    removed: int = 0  # stale passages of this source deleted (its text changed)
    updated: int = 0  # of the skipped, those whose metadata was rewritten
    # What was embedded, by content hash: LightRAG takes these instead of embedding again.
    vectors: dict[str, Vector] = field(default_factory=dict)


def chunk_documents(
    ctx: JobContext,
    chunks: Sequence[Chunk],
    *,
    source: str,
    title: str | None,
    metadata: Mapping[str, Any],
) -> list[Document]:
    now = datetime.now(UTC).isoformat()
    documents = []
    for index, chunk in enumerate(chunks):
        own = {
            "source": source,
            "title": title[:MAX_TITLE_CHARS] if title else title,
            "headings": [h[:MAX_TITLE_CHARS] for h in chunk.headings[:MAX_HEADINGS]],
            "page": chunk.page,
            "chunk_index": index,
            "chunk_count": len(chunks),
            "content_hash": content_hash(chunk.text),
            "job_id": ctx.job_id,
            "ingested_at": now,
        }
        documents.append(Document(chunk.text, {**metadata, **own}))
    return documents


async def ingest_chunks(
    ctx: JobContext,
    chunks: Sequence[Chunk],
    *,
    collection: str | None,
    source: str,
    title: str | None,
    metadata: Mapping[str, Any],
    report_progress: bool = True,
    remove_stale: bool = True,
    then: Callable[[IngestCounts], Awaitable[None]] | None = None,
) -> IngestCounts:
    """Store ``chunks`` of one source; already-stored ones are skipped and counted.

    ``remove_stale`` deletes this source's earlier passages that are not among the new
    ones (the document changed), once every new chunk is stored: a job that fails or is
    cancelled half-way leaves the old version searchable rather than half of each.
    ``report_progress`` off lets a caller that ingests many sources (a crawl) report its
    own progress instead of an "embedding" stage per page. Jobs storing the same source in
    the same collection take turns (``ctx.source_locks``, across worker processes too), so
    the last to finish wins whole.
    ``then`` runs under that lock once the chunks are stored (LightRAG takes the same
    version as Qdrant).
    """

    async def waiting(_across_processes: bool) -> None:
        if report_progress:  # another job stores this very source: say so, or it looks stuck
            await ctx.report(Progress(stage="waiting", done=0, total=1))

    name = source_lock_name(collection or ctx.service.default_collection, source)
    async with ctx.source_locks.hold(name, on_wait=waiting):
        documents = chunk_documents(ctx, chunks, source=source, title=title, metadata=metadata)
        counts = await _store(
            ctx,
            documents,
            collection=collection,
            source=source,
            report_progress=report_progress,
            remove_stale=remove_stale,
        )
        if then is not None:
            await then(counts)
        return counts


async def _store(
    ctx: JobContext,
    documents: Sequence[Document],
    *,
    collection: str | None,
    source: str,
    report_progress: bool,
    remove_stale: bool,
) -> IngestCounts:
    stored = skipped = updated = 0
    kept: list[str] = []
    vectors: dict[str, Vector] = {}
    total = len(documents)
    if report_progress:
        await ctx.report(Progress(stage="embedding", done=0, total=total))
    for start in range(0, total, BATCH):
        await ctx.checkpoint()
        batch = documents[start : start + BATCH]
        result = await ctx.service.store_new_documents(
            batch, collection, volatile_keys=VOLATILE_KEYS
        )
        stored += result.stored
        vectors.update(result.vectors)
        skipped += len(result.skipped) + len(result.updated)
        updated += len(result.updated)
        kept.extend(result.ids)
        kept.extend(result.skipped)
        kept.extend(result.updated)
        if report_progress:
            await ctx.report(
                Progress(stage="embedding", done=min(start + len(batch), total), total=total)
            )
    removed = 0
    if remove_stale:
        removed = await ctx.service.remove_stale(source, kept, collection)
    return IngestCounts(
        stored=stored, skipped=skipped, removed=removed, updated=updated, vectors=vectors
    )
