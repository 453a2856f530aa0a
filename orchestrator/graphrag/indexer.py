"""Sources into LightRAG: insert new ones, replace changed ones, skip unchanged, remove.

Every write to a workspace holds its writer lock (``locks.py``). A changed source is
deleted by its document id, then inserted again; a failed insert is reported, never
raised past the job: LightRAG marks a document ``failed`` instead of raising, so its
status is read back after every run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from knowledge.embeddings.base import Vector
from knowledge.vectorstore.ids import content_hash
from orchestrator.graphrag import metrics
from orchestrator.graphrag.locks import WriterLocks
from orchestrator.graphrag.registry import SourceEntry, SourceRegistry, doc_id_of
from orchestrator.graphrag.workspaces import SEPARATOR, ChunkSpec, Workspaces
from orchestrator_client.models import LightRAGFailure, LightRAGReport

_PROCESSED = "processed"


@dataclass(frozen=True)
class SourceChunks:
    """One source as the pipeline stored it in Qdrant."""

    source: str
    title: str | None
    chunks: Sequence[ChunkSpec]
    pages: Sequence[int | None] = ()
    # What makes it one document over time, when not its source: an upload's name does
    # not (two reports may both be "upload:report.pdf"), so its content hash joins in.
    identity: str | None = None
    doc_id: str | None = None  # known already (a rebuild)

    def document_id(self, workspace: str) -> str:
        return self.doc_id or doc_id_of(workspace, self.identity or self.source)


@dataclass
class _Tally:
    indexed: int = 0
    unchanged: int = 0
    entities: int = 0
    relations: int = 0
    failures: list[LightRAGFailure] = field(default_factory=list)

    def report(self, graph: bool) -> LightRAGReport:
        if not self.failures:
            status = "indexed" if self.indexed else "unchanged"
        else:
            status = "partial" if self.indexed else "failed"
        return LightRAGReport(
            status=status,
            graph=graph,
            documents_indexed=self.indexed,
            documents_unchanged=self.unchanged,
            entities=self.entities,
            relations=self.relations,
            failures=self.failures,
        )


def merge_reports(total: LightRAGReport | None, report: LightRAGReport) -> LightRAGReport:
    """Two runs' reports as one (batches of a job, of a rebuild)."""
    if total is None:
        return report
    failures = [*total.failures, *report.failures]
    indexed = total.documents_indexed + report.documents_indexed
    unchanged = total.documents_unchanged + report.documents_unchanged
    if failures:
        status = "partial" if indexed or unchanged else "failed"
    else:
        status = "indexed" if indexed else "unchanged"
    return LightRAGReport(
        status=status,
        graph=report.graph,
        documents_indexed=indexed,
        documents_unchanged=unchanged,
        entities=total.entities + report.entities,
        relations=total.relations + report.relations,
        failures=failures,
    )


def _fingerprint(item: SourceChunks) -> str:
    joined = SEPARATOR.join(chunk.text for chunk in item.chunks)
    digest = hashlib.sha256()
    for part in (item.title or "", joined, repr(list(item.pages))):
        digest.update(part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def _status_of(statuses: Mapping[str, Any], doc_id: str) -> dict[str, Any] | None:
    status = statuses.get(doc_id)
    return status if isinstance(status, dict) else None


async def doc_statuses(rag: Any, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """LightRAG's status records of these documents (absent ones left out)."""
    rows = await rag.doc_status.get_by_ids(list(doc_ids))
    if len(rows) != len(doc_ids):
        # Some backends (PostgreSQL) answer [] when none is found, not one None per id.
        rows = [await rag.doc_status.get_by_id(doc_id) for doc_id in doc_ids] if rows else []
    return {d: row for d, row in zip(doc_ids, rows, strict=False) if isinstance(row, dict)}


def _cache_keys(items: Sequence[SourceChunks], vectors: Mapping[str, Vector]) -> dict[str, Vector]:
    """The job's vectors keyed by the text LightRAG will embed (it sanitises what it takes)."""
    from lightrag.utils import sanitize_text_for_encoding

    out: dict[str, Vector] = {}
    for item in items:
        for chunk in item.chunks:
            vector = vectors.get(content_hash(chunk.text))
            if vector is not None:
                out[content_hash(chunk.text)] = vector
                out[content_hash(sanitize_text_for_encoding(chunk.text))] = vector
    return out


class GraphIndexer:
    def __init__(
        self, workspaces: Workspaces, registry: SourceRegistry, locks: WriterLocks
    ) -> None:
        self.workspaces = workspaces
        self.registry = registry
        self.locks = locks

    @property
    def graph(self) -> bool:
        return self.workspaces.llm is not None

    async def index(
        self,
        collection: str,
        items: Sequence[SourceChunks],
        vectors: Mapping[str, Vector] | None = None,
        *,
        force: bool = False,
    ) -> LightRAGReport:
        """Bring these sources up to date in the collection's workspace.

        ``vectors``: what the job embedded for Qdrant (content hash -> vector), reused.
        ``force``: index again even when unchanged (a rebuild with an LLM).
        """
        tally = _Tally()
        items = [item for item in items if item.chunks]
        if not items:
            return tally.report(self.graph)
        rag = await self.workspaces.get(collection)
        with self.workspaces.cache.holding(_cache_keys(items, vectors or {})):
            async with self.locks.hold(collection):
                await self._index_locked(rag, collection, items, tally, force)
        return tally.report(self.graph)

    async def _index_locked(
        self,
        rag: Any,
        workspace: str,
        items: Sequence[SourceChunks],
        tally: _Tally,
        force: bool,
    ) -> None:
        by_id = {item.document_id(workspace): item for item in items}
        fingerprints = {doc_id: _fingerprint(item) for doc_id, item in by_id.items()}
        known = await self.registry.get(workspace, list(by_id))
        statuses = await doc_statuses(rag, list(by_id))
        todo: dict[str, SourceChunks] = {}
        for doc_id, item in by_id.items():
            entry, status = known.get(doc_id), _status_of(statuses, doc_id)
            current = (
                entry is not None
                and entry.content_hash == fingerprints[doc_id]
                and status is not None
                and status.get("status") == _PROCESSED
                and (entry.graph or not self.graph)
            )
            if current and not force:
                tally.unchanged += 1
                continue
            if status is not None and not await self._delete(rag, doc_id, item.source, tally):
                continue
            todo[doc_id] = item
        if todo:
            await self._insert(rag, workspace, todo, fingerprints, tally)

    async def _delete(self, rag: Any, doc_id: str, source: str, tally: _Tally) -> bool:
        with metrics.timed("delete") as outcome:
            result = await rag.adelete_by_doc_id(doc_id)
            ok = result.status in ("success", "not_found")
            outcome.status = "ok" if ok else "error"
        if not ok:
            tally.failures.append(
                LightRAGFailure(
                    source=source,
                    reason=f"its earlier version could not be removed: {result.message}",
                )
            )
        return bool(ok)

    async def _insert(
        self,
        rag: Any,
        workspace: str,
        todo: Mapping[str, SourceChunks],
        fingerprints: Mapping[str, str],
        tally: _Tally,
    ) -> None:
        handoff = self.workspaces.handoff
        llm = self.workspaces.llm
        failures_before = llm.failures if llm else 0
        texts = [handoff.put(item.chunks) for item in todo.values()]
        with metrics.timed("insert") as outcome:
            try:
                await rag.apipeline_enqueue_documents(
                    texts,
                    ids=list(todo),
                    file_paths=list(todo),
                    process_options="C" if self.graph else "C!",
                )
                await rag.apipeline_process_enqueue_documents()
            finally:
                for text in texts:
                    handoff.discard(text)
            statuses = await doc_statuses(rag, list(todo))
            llm_note = ""
            if llm is not None and llm.failures > failures_before:
                llm_note = f" (the LLM failed: {llm.last_failure})"
            for doc_id, item in todo.items():
                status = _status_of(statuses, doc_id) or {}
                if status.get("status") != _PROCESSED:
                    reason = str(status.get("error_msg") or status.get("status") or "not stored")
                    tally.failures.append(
                        LightRAGFailure(source=item.source, reason=reason[:500] + llm_note)
                    )
                    continue
                tally.indexed += 1
                await self._count_graph(rag, doc_id, tally)
                await self.registry.put(
                    SourceEntry(
                        workspace=workspace,
                        doc_id=doc_id,
                        source=item.source,
                        title=item.title,
                        content_hash=fingerprints[doc_id],
                        pages=list(item.pages),
                        graph=self.graph,
                    )
                )
            outcome.status = "error" if tally.failures else "ok"

    @staticmethod
    async def _count_graph(rag: Any, doc_id: str, tally: _Tally) -> None:
        entities = await rag.full_entities.get_by_id(doc_id)
        relations = await rag.full_relations.get_by_id(doc_id)
        if isinstance(entities, dict):
            tally.entities += int(entities.get("count") or len(entities.get("entity_names", [])))
        if isinstance(relations, dict):
            tally.relations += int(
                relations.get("count") or len(relations.get("relation_pairs", []))
            )

    async def remove(self, collection: str, source: str) -> bool:
        """Delete a source's document, entities and chunks from the workspace."""
        rag = await self.workspaces.get(collection)
        doc_id = doc_id_of(collection, source)
        tally = _Tally()
        async with self.locks.hold(collection):
            ok = await self._delete(rag, doc_id, source, tally)
            if ok:
                await self.registry.remove(collection, doc_id)
        return ok
