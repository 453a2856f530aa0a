"""A job's sources into LightRAG, after each is stored in Qdrant.

Sources are indexed in batches (one LightRAG pipeline run, one flush of its storages per
batch) with the vectors the job computed for Qdrant. A LightRAG failure never fails the
job: Qdrant already holds the chunks, and the job result's ``lightrag`` part says what
LightRAG could not take and why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from knowledge.embeddings.base import Vector
from orchestrator.graphrag.indexer import SourceChunks, merge_reports
from orchestrator.graphrag.workspaces import ChunkSpec
from orchestrator.pipeline.context import JobContext
from orchestrator.pipeline.convert.chunking import Chunk
from orchestrator.pipeline.ingest import MAX_HEADINGS, MAX_TITLE_CHARS
from orchestrator_client.models import LightRAGFailure, LightRAGReport

log = logging.getLogger(__name__)


class GraphFeed:
    def __init__(self, ctx: JobContext, collection: str) -> None:
        self.ctx = ctx
        self.collection = collection
        self._items: list[SourceChunks] = []
        self._vectors: dict[str, Vector] = {}
        self._report: LightRAGReport | None = None

    async def add(
        self,
        source: str,
        title: str | None,
        chunks: Sequence[Chunk],
        vectors: Mapping[str, Vector],
        *,
        identity: str | None = None,
    ) -> None:
        """Queue one stored source; ``identity``: see ``SourceChunks`` (uploads)."""
        graph = self.ctx.graph
        if graph is None or not chunks:
            return
        self._items.append(
            SourceChunks(
                source=source,
                title=title[:MAX_TITLE_CHARS] if title else title,
                chunks=[
                    ChunkSpec(c.text, tuple(h[:MAX_TITLE_CHARS] for h in c.headings[:MAX_HEADINGS]))
                    for c in chunks
                ],
                pages=[c.page for c in chunks],
                identity=identity,
            )
        )
        self._vectors.update(vectors)
        if len(self._items) >= graph.config.batch_sources:
            await self.flush()

    async def flush(self) -> None:
        graph = self.ctx.graph
        items, self._items = self._items, []
        vectors, self._vectors = self._vectors, {}
        if graph is None or not items:
            return
        try:
            with self.ctx.stages.stage("lightrag"):
                report = await graph.index(self.collection, items, vectors)
        except Exception as exc:
            # Qdrant holds these sources already: report, do not fail the job.
            log.warning("job %s: LightRAG indexing failed: %s", self.ctx.job_id, exc)
            reason = str(exc) or type(exc).__name__
            report = LightRAGReport(
                status="failed",
                graph=graph.llm is not None,
                failures=[LightRAGFailure(source=i.source, reason=reason[:500]) for i in items],
            )
        self._report = merge_reports(self._report, report)

    async def finish(self) -> LightRAGReport | None:
        await self.flush()
        return self._report
