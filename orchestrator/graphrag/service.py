"""The LightRAG service: what ingestion jobs, the query route and the rebuild job call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, get_args

from knowledge.breakers import Breaker
from knowledge.embeddings.base import Vector
from knowledge.service import KnowledgeService
from knowledge.vectorstore.base import check_collection_name
from orchestrator.graphrag import metrics
from orchestrator.graphrag.config import GraphConfig
from orchestrator.graphrag.embedding import VectorCache
from orchestrator.graphrag.indexer import (
    GraphIndexer,
    SourceChunks,
    doc_statuses,
    merge_reports,
)
from orchestrator.graphrag.llm import ChatLLM
from orchestrator.graphrag.locks import WriterLocks
from orchestrator.graphrag.query import GraphQuerier
from orchestrator.graphrag.registry import SourceEntry, SourceRegistry
from orchestrator.graphrag.workspaces import ChunkSpec, Workspaces
from orchestrator_client.graph_models import LightRAGAnswer, LightRAGQuery, QueryMode
from orchestrator_client.models import LightRAGFailure, LightRAGReport

Progress = Callable[[int, int], Awaitable[None]]


class GraphService:
    def __init__(
        self,
        config: GraphConfig,
        knowledge: KnowledgeService,
        *,
        llm_breaker: Breaker | None = None,
    ) -> None:
        self.config = config
        self.knowledge = knowledge
        self.registry = SourceRegistry(config.registry_url)
        self.llm = (
            ChatLLM(config.llm, llm_breaker or Breaker("llm")) if config.llm is not None else None
        )
        self.cache = VectorCache()
        self.locks = WriterLocks()
        self.workspaces = Workspaces(config, knowledge, self.llm, self.cache, self.locks)
        self.indexer = GraphIndexer(self.workspaces, self.registry, self.locks)
        self.querier = GraphQuerier(self.workspaces, self.registry)
        modes: tuple[QueryMode, ...] = get_args(QueryMode)
        metrics.declare_operations(["insert", "delete", *(f"query_{mode}" for mode in modes)])

    async def open(self) -> None:
        await self.registry.open()
        if self.config.postgres is not None:
            self.locks = WriterLocks(self.registry.engine)
            self.indexer.locks = self.workspaces.locks = self.locks

    async def close(self) -> None:
        try:
            await self.workspaces.close()
        finally:
            await self.registry.close()
            if self.llm is not None:
                await self.llm.aclose()

    def collection(self, name: str | None) -> str:
        return check_collection_name(self.knowledge.default_collection if name is None else name)

    async def index(
        self,
        collection: str,
        items: Sequence[SourceChunks],
        vectors: Mapping[str, Vector] | None = None,
    ) -> LightRAGReport:
        return await self.indexer.index(collection, items, vectors)

    async def query(self, request: LightRAGQuery) -> LightRAGAnswer:
        return await self.querier.query(request, self.collection(request.collection))

    async def rebuild(self, collection: str, progress: Progress | None = None) -> LightRAGReport:
        """Index every source of the collection again (with an LLM: its graph too).

        The chunks come from LightRAG's own chunk store, so sources it holds are rebuilt
        without re-reading the documents; pages and titles from the registry.
        """
        entries = await self.registry.all(collection)
        rag = await self.workspaces.get(collection)
        merged: LightRAGReport | None = None
        failures: list[LightRAGFailure] = []
        batch = max(1, self.config.batch_sources)
        for start in range(0, len(entries), batch):
            items: list[SourceChunks] = []
            for entry in entries[start : start + batch]:
                item = await _stored_chunks(rag, entry)
                if item is None:
                    failures.append(
                        LightRAGFailure(
                            source=entry.source,
                            reason="LightRAG holds no chunks of it; ingest it again",
                        )
                    )
                else:
                    items.append(item)
            report = await self.indexer.index(collection, items, force=True)
            merged = merge_reports(merged, report)
            if progress is not None:
                await progress(min(start + batch, len(entries)), len(entries))
        graph = self.llm is not None
        missing = LightRAGReport(status="failed" if failures else "unchanged", graph=graph)
        missing.failures.extend(failures)
        return merge_reports(merged, missing) if merged is not None else missing


async def _stored_chunks(rag: Any, entry: SourceEntry) -> SourceChunks | None:
    status = (await doc_statuses(rag, [entry.doc_id])).get(entry.doc_id)
    if status is None or not status.get("chunks_list"):
        return None
    ids = list(status["chunks_list"])
    rows = await rag.text_chunks.get_by_ids(ids)
    chunks: list[tuple[int, ChunkSpec]] = []
    for row in rows:
        if not isinstance(row, dict) or not row.get("content"):
            continue
        heading: dict[str, Any] = row["heading"] if isinstance(row.get("heading"), dict) else {}
        path = [*heading.get("parent_headings", []), heading.get("heading", "")]
        headings = tuple(str(h) for h in path if h)
        chunks.append((int(row.get("chunk_order_index", 0)), ChunkSpec(row["content"], headings)))
    if not chunks:
        return None
    chunks.sort(key=lambda pair: pair[0])
    return SourceChunks(
        entry.source, entry.title, [c for _, c in chunks], entry.pages, doc_id=entry.doc_id
    )
