"""A question to a collection's LightRAG workspace, answered with real sources.

LightRAG names sources by the ``file_path`` it was given, which is our document id; the
registry turns each back into the URL or path, title and page. Its own failure modes
are made loud: a query whose LLM failed returns "no results" rather than raising, so the
LLM client's failure count is compared around the call.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

from knowledge.errors import DependencyRejected, DependencyUnavailable, InvalidInput
from orchestrator.graphrag import metrics
from orchestrator.graphrag.llm import CONFIGURE_HINT, ChatLLM
from orchestrator.graphrag.registry import SourceEntry, SourceRegistry
from orchestrator.graphrag.workspaces import Workspaces
from orchestrator_client.graph_models import (
    GRAPH_MODES,
    GraphChunk,
    GraphEntity,
    GraphReference,
    GraphRelation,
    LightRAGAnswer,
    LightRAGQuery,
    QueryMode,
    QueryTimings,
)

GRAPH_FIELD_SEP = "<SEP>"  # lightrag.constants: how it joins several file paths
_CHUNK_INDEX = re.compile(r"-chunk-(\d+)$")


class QueryFailed(DependencyRejected):
    code = "lightrag_failed"


def _paths(value: Any) -> list[str]:
    return [p for p in str(value or "").split(GRAPH_FIELD_SEP) if p]


def _chunk_index(chunk_id: Any) -> int | None:
    found = _CHUNK_INDEX.search(str(chunk_id or ""))
    return int(found.group(1)) if found else None


class GraphQuerier:
    def __init__(self, workspaces: Workspaces, registry: SourceRegistry) -> None:
        self.workspaces = workspaces
        self.registry = registry

    def mode_for(self, request: LightRAGQuery) -> QueryMode:
        llm = self.workspaces.llm
        mode: QueryMode = request.mode or ("mix" if llm else "naive")
        no_keywords = request.keywords is None or request.keywords.empty
        if mode in GRAPH_MODES and llm is None and no_keywords:
            hint = CONFIGURE_HINT[0].lower() + CONFIGURE_HINT[1:].rstrip(".")
            raise InvalidInput(
                f"Mode {mode!r} walks the knowledge graph, which needs keywords: either an "
                f"LLM to find them (none is configured here: {hint}), or keywords you pass "
                "yourself (high_level_keywords / low_level_keywords in lightrag_query, "
                "keywords.high_level / keywords.low_level over REST), or use mode 'naive' "
                "(passages only)."
            )
        return mode

    async def query(self, request: LightRAGQuery, collection: str) -> LightRAGAnswer:
        from lightrag import QueryParam
        from lightrag.query_validation import QueryValidationError, validate_rag_query

        mode = self.mode_for(request)
        try:
            validate_rag_query(request.query)
        except QueryValidationError as exc:
            raise InvalidInput(f"query: {exc}") from None
        llm = self.workspaces.llm
        wants_answer = llm is not None and not request.only_context
        keywords = request.keywords
        param = QueryParam(
            mode=mode,
            top_k=request.top_k,
            chunk_top_k=request.chunk_top_k,
            hl_keywords=list(keywords.high_level) if keywords else [],
            ll_keywords=list(keywords.low_level) if keywords else [],
            enable_rerank=False,  # no reranker is configured: it would only warn
            include_references=True,
        )
        rag = await self.workspaces.get(collection)
        failures_before = llm.failures if llm else 0
        start = time.perf_counter()
        with metrics.timed(f"query_{mode}") as outcome:
            try:
                if wants_answer:
                    raw = await rag.aquery_llm(request.query, param)
                else:
                    raw = await rag.aquery_data(request.query, param)
            except Exception as exc:
                # LightRAG raises when the LLM fails to find keywords, and swallows it
                # when the LLM fails to write the answer: the same message for both.
                if llm is not None and llm.failures > failures_before:
                    raise _llm_failed(llm) from exc
                raise
            if llm is not None and llm.failures > failures_before:
                outcome.status = "error"
                raise _llm_failed(llm)
            if (
                raw.get("status") == "failure"
                and (raw.get("metadata") or {}).get("failure_reason") != "no_results"
            ):
                outcome.status = "error"
                raise QueryFailed(f"LightRAG could not answer: {raw.get('message')}")
        elapsed = (time.perf_counter() - start) * 1000
        answer = None
        if wants_answer:
            content = (raw.get("llm_response") or {}).get("content")
            answer = content if isinstance(content, str) and content.strip() else None
        result = await self._shape(collection, mode, raw.get("data") or {}, answer)
        total = (time.perf_counter() - start) * 1000
        result.timings = QueryTimings(
            retrieval_ms=None if wants_answer else round(elapsed, 2),
            answer_ms=round(elapsed, 2) if wants_answer else None,
            total_ms=round(total, 2),
        )
        return result

    async def _shape(
        self, collection: str, mode: QueryMode, data: dict[str, Any], answer: str | None
    ) -> LightRAGAnswer:
        entities = [e for e in data.get("entities") or [] if isinstance(e, dict)]
        relations = [r for r in data.get("relationships") or [] if isinstance(r, dict)]
        chunks = [c for c in data.get("chunks") or [] if isinstance(c, dict)]
        doc_ids: set[str] = set()
        for item in (*entities, *relations, *chunks):
            doc_ids.update(_paths(item.get("file_path")))
        known = await self.registry.get(collection, sorted(doc_ids))

        def sources(value: Any) -> list[str]:
            return list(dict.fromkeys(_source(known, p) for p in _paths(value)))

        shaped_chunks = []
        for chunk in chunks:
            doc_id = next(iter(_paths(chunk.get("file_path"))), "")
            entry = known.get(doc_id)
            index = _chunk_index(chunk.get("chunk_id"))
            shaped_chunks.append(
                GraphChunk(
                    text=str(chunk.get("content") or ""),
                    score=_score(chunk),
                    source=_source(known, doc_id) if doc_id else None,
                    title=entry.title if entry else None,
                    page=entry.page_of(index) if entry and index is not None else None,
                )
            )
        return LightRAGAnswer(
            collection=collection,
            mode=mode,
            answer=answer,
            entities=[
                GraphEntity(
                    name=str(e.get("entity_name") or ""),
                    type=e.get("entity_type") or None,
                    description=str(e.get("description") or ""),
                    sources=sources(e.get("file_path")),
                )
                for e in entities
            ],
            relations=[
                GraphRelation(
                    source=str(r.get("src_id") or ""),
                    target=str(r.get("tgt_id") or ""),
                    keywords=str(r.get("keywords") or ""),
                    description=str(r.get("description") or ""),
                    sources=sources(r.get("file_path")),
                )
                for r in relations
            ],
            chunks=shaped_chunks,
            references=_references(known, (*entities, *relations, *chunks)),
            timings=QueryTimings(retrieval_ms=0, total_ms=0),
        )


def _llm_failed(llm: ChatLLM) -> DependencyUnavailable:
    return DependencyUnavailable(
        f"{llm.last_failure} The stored data is intact; retrieval without the LLM still "
        "works (only_context with keywords, or mode 'naive').",
        retry_after=llm.breaker.retry_after or None,
    )


def _source(known: dict[str, SourceEntry], doc_id: str) -> str:
    entry = known.get(doc_id)
    return entry.source if entry else doc_id


def _score(chunk: dict[str, Any]) -> float | None:
    for key in ("score", "similarity", "distance"):
        value = chunk.get(key)
        if isinstance(value, int | float):
            return float(value)
    return None


def _references(
    known: dict[str, SourceEntry], items: Iterable[dict[str, Any]]
) -> list[GraphReference]:
    seen: dict[str, GraphReference] = {}
    for item in items:
        for doc_id in _paths(item.get("file_path")):
            source = _source(known, doc_id)
            if source not in seen:
                entry = known.get(doc_id)
                seen[source] = GraphReference(source=source, title=entry.title if entry else None)
    return list(seen.values())
