"""The embedded backend: the Qdrant engine in-process (``qdrant-edge-py``).

One shard per collection (edge_shards.py opens them and keeps them up). A data directory
admits one process (the WAL is locked), which :mod:`knowledge.datadir` turns into a clear
start-up error. Every shard call runs in a worker thread: the engine releases the GIL and
is thread-safe. The HNSW index is built by a blocking ``optimize()``, so it runs in a
background thread once enough new points have arrived, never on a request.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from knowledge.errors import InvalidInput, KnowledgeError
from knowledge.vectorstore.base import (
    CollectionSpec,
    SearchHit,
    StoredPoint,
    VectorStore,
)
from knowledge.vectorstore.edge_engine import (
    engine_filter,
    field_value,
    is_bool_match,
    shielded,
)
from knowledge.vectorstore.edge_shards import EdgeShards, Shard
from knowledge.vectorstore.filters import (
    Condition,
    index_kind,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# qdrant-edge-py 0.9 turns MatchValue(True) into the integer 1, which matches no boolean
# payload; boolean equality is therefore applied in Python over a widening window of
# nearest hits (exact for every page that fits in the window).
MAX_BOOL_WINDOW = 20_000
ID_PAGE = 1000  # ids per retrieve or scroll call


class EdgeVectorStore(VectorStore):
    def __init__(
        self,
        data_dir: Path,
        *,
        optimize_after: int = 5000,
        indexing_threshold_kb: int | None = None,
    ) -> None:
        self.shards = EdgeShards(
            data_dir, optimize_after=optimize_after, indexing_threshold_kb=indexing_threshold_kb
        )

    @property
    def root(self) -> Path:
        """Where the collections' directories are."""
        return self.shards.root

    def optimizing(self) -> bool:
        """Whether an index build is running in the background."""
        return self.shards.optimizing()

    # -- opening -------------------------------------------------------------------------

    async def ensure_collection(self, name: str, spec: CollectionSpec) -> str:
        opened = await asyncio.to_thread(shielded, self.shards.open, name, spec)
        assert opened is not None
        return opened[1]

    async def collection_exists(self, name: str) -> bool:
        return (self.shards.path(name) / "edge_config.json").exists()

    async def ping(self, name: str) -> None:
        """The engine runs in this process: it serves while the store is open and the data
        directory is there to write to (a removed or read-only volume is what fails)."""
        self.shards.path(name)
        if self.shards.closed:
            raise KnowledgeError("the embedded vector store is closed")
        data_dir = self.root.parent
        if not data_dir.is_dir():
            raise KnowledgeError(f"the data directory {data_dir} is missing")
        for directory in (data_dir, self.root):
            if directory.is_dir() and not os.access(directory, os.W_OK | os.X_OK):
                raise KnowledgeError(f"the directory {directory} is not writable")

    # -- writing -------------------------------------------------------------------------

    def _upsert(self, name: str, vector_name: str, points: Sequence[StoredPoint]) -> None:
        from qdrant_edge import Point, UpdateOperation

        coll = self.shards.get(name)
        edge_points = [Point(p.id, {vector_name: p.vector}, p.payload) for p in points]
        coll.shard.update(UpdateOperation.upsert_points(edge_points))
        self.shards.wrote(name, coll, len(points))

    async def upsert(self, name: str, vector_name: str, points: Sequence[StoredPoint]) -> None:
        if points:
            await asyncio.to_thread(shielded, self._upsert, name, vector_name, points)

    # -- reading -------------------------------------------------------------------------

    def _edge_filter(self, coll: Shard, conditions: Sequence[Condition]) -> Any:
        for cond in conditions:
            self.shards.index(coll, cond.field, index_kind(cond))
        return engine_filter(conditions)

    def _search(
        self,
        name: str,
        vector_name: str,
        vector: list[float],
        limit: int,
        offset: int,
        conditions: Sequence[Condition],
        score_threshold: float | None,
    ) -> list[SearchHit]:
        from qdrant_edge import Query, QueryRequest

        try:
            coll = self.shards.get(name)
        except KeyError:
            return []
        in_python = [c for c in conditions if is_bool_match(c)]
        in_engine = [c for c in conditions if not is_bool_match(c)]
        engine_filter = self._edge_filter(coll, in_engine)

        def query(window: int, skip: int) -> list[SearchHit]:
            request = QueryRequest(
                limit=window,
                offset=skip or None,
                query=Query.Nearest(vector, using=vector_name),
                with_payload=True,
                filter=engine_filter,
                score_threshold=score_threshold,
            )
            return [
                SearchHit(str(p.id), float(p.score), dict(p.payload or {}))
                for p in coll.shard.query(request)
            ]

        if not in_python:
            return query(limit, offset)
        wanted = offset + limit
        window = min(max(wanted * 4, 64), MAX_BOOL_WINDOW)
        while True:
            hits = query(window, 0)
            kept = [
                h
                for h in hits
                if all(field_value(h.payload, c.field) is c.value for c in in_python)  # type: ignore[union-attr]
            ]
            if len(kept) >= wanted or len(hits) < window:
                return kept[offset:wanted]
            if window >= MAX_BOOL_WINDOW:
                # Answering with a short page would claim there is nothing more.
                fields = ", ".join(sorted({c.field for c in in_python}))
                raise InvalidInput(
                    f"The true/false filter on {fields} matched {len(kept)} of the "
                    f"{window} passages nearest to the query, fewer than this page needs. "
                    "The embedded store checks true/false filters over that many passages; "
                    "add another filter condition (e.g. on source) or a score_threshold."
                )
            window = min(window * 4, MAX_BOOL_WINDOW)

    async def search(
        self,
        name: str,
        vector_name: str,
        vector: list[float],
        *,
        limit: int,
        offset: int = 0,
        conditions: Sequence[Condition] = (),
        score_threshold: float | None = None,
    ) -> list[SearchHit]:
        return await asyncio.to_thread(
            shielded,
            self._search,
            name,
            vector_name,
            vector,
            limit,
            offset,
            conditions,
            score_threshold,
        )

    def _count(self, name: str) -> int:
        from qdrant_edge import CountRequest

        try:
            return int(self.shards.get(name).shard.count(CountRequest(exact=True)))
        except KeyError:
            return 0

    async def count(self, name: str) -> int:
        return await asyncio.to_thread(shielded, self._count, name)

    def _stored_metadata(self, name: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        try:
            coll = self.shards.get(name)
        except KeyError:
            return {}
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), ID_PAGE):
            records = coll.shard.retrieve(list(ids[start : start + ID_PAGE]), True, False)
            found.update(
                (str(r.id), dict((r.payload or {}).get("metadata") or {})) for r in records
            )
        return found

    async def stored_metadata(self, name: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        return await asyncio.to_thread(shielded, self._stored_metadata, name, ids)

    def _source_ids(self, name: str, source: str) -> set[str]:
        from qdrant_edge import FieldCondition, Filter, MatchValue, ScrollRequest

        try:
            coll = self.shards.get(name)
        except KeyError:
            return set()
        by_source = Filter(must=[FieldCondition(key="metadata.source", match=MatchValue(source))])
        found: set[str] = set()
        offset: Any = None
        while True:
            request = ScrollRequest(
                offset=offset,
                limit=ID_PAGE,
                filter=by_source,
                with_payload=False,
                with_vector=False,
            )
            records, offset = coll.shard.scroll(request)
            found.update(str(r.id) for r in records)
            if offset is None or not records:
                return found

    async def source_ids(self, name: str, source: str) -> set[str]:
        return await asyncio.to_thread(shielded, self._source_ids, name, source)

    def _update_metadata(self, name: str, metadata: Mapping[str, dict[str, Any]]) -> None:
        from qdrant_edge import UpdateOperation

        try:
            coll = self.shards.get(name)
        except KeyError:
            return
        present = set(self._stored_metadata(name, list(metadata)))
        for pid, values in metadata.items():
            if pid in present:  # the engine would create a payload-only point otherwise
                coll.shard.update(UpdateOperation.set_payload([pid], {"metadata": values}))

    async def update_metadata(self, name: str, metadata: Mapping[str, dict[str, Any]]) -> None:
        if metadata:
            await asyncio.to_thread(shielded, self._update_metadata, name, metadata)

    def _delete(self, name: str, ids: Sequence[str]) -> None:
        from qdrant_edge import UpdateOperation

        try:
            coll = self.shards.get(name)
        except KeyError:
            return
        coll.shard.update(UpdateOperation.delete_points(list(ids)))

    async def delete(self, name: str, ids: Sequence[str]) -> None:
        if ids:
            await asyncio.to_thread(shielded, self._delete, name, ids)

    # -- closing -------------------------------------------------------------------------

    def _close(self) -> None:
        self.shards.close()

    async def close(self) -> None:
        await asyncio.to_thread(self._close)
