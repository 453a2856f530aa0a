"""The embedded backend: the Qdrant engine in-process (``qdrant-edge-py``).

One shard per collection.

Shards live under ``<data_dir>/collections/<name>``. A data directory admits one process
(the WAL is locked), which :mod:`knowledge.datadir` turns into a clear start-up error.
Every shard call runs in a worker thread: the engine releases the GIL and is thread-safe.
The HNSW index is built by a blocking ``optimize()``, so it runs in a background thread
once enough new points have arrived, never on a request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from knowledge.errors import CollectionMismatch, InvalidInput
from knowledge.vectorstore.base import (
    CollectionSpec,
    ExistingVector,
    SearchHit,
    StoredPoint,
    VectorStore,
    check_collection_name,
    pick_vector,
)
from knowledge.vectorstore.edge_engine import (
    engine_filter,
    field_value,
    is_bool_match,
    shielded,
)
from knowledge.vectorstore.filters import (
    MAX_INDEXED_FIELDS,
    Condition,
    IndexKind,
    index_kind,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Indexed from the start: every writer sets it and users filter by it most.
DEFAULT_INDEXED_FIELDS = ("source",)
# qdrant-edge-py 0.9 turns MatchValue(True) into the integer 1, which matches no boolean
# payload; boolean equality is therefore applied in Python over a widening window of
# nearest hits (exact for every page that fits in the window).
MAX_BOOL_WINDOW = 20_000
FLUSH_INTERVAL = 5.0  # seconds
ID_PAGE = 1000  # ids per retrieve or scroll call


class _Collection:
    def __init__(self, shard: Any, indexed: set[str]) -> None:
        self.shard = shard
        self.indexed = indexed
        self.pending_optimize = 0
        self.flushed_at = time.monotonic()
        self.optimizing: Future[None] | None = None
        self.lock = threading.Lock()


class EdgeVectorStore(VectorStore):
    def __init__(
        self,
        data_dir: Path,
        *,
        optimize_after: int = 5000,
        indexing_threshold_kb: int | None = None,
    ) -> None:
        self.root = Path(data_dir) / "collections"
        self.optimize_after = optimize_after
        # Vector data (KB) in a segment before optimize() builds its HNSW index; None keeps
        # the engine's default (about 6-7k 384-d vectors). Below it, search is brute force.
        self.indexing_threshold_kb = indexing_threshold_kb
        self._collections: dict[str, _Collection] = {}
        self._open_lock = threading.Lock()
        self._optimizer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="optimize")
        self._closed = False

    # -- opening -------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        check_collection_name(name)
        if name != name.lower():
            # Directories: "Notes" and "notes" would be one directory on macOS and Windows.
            raise InvalidInput(
                f"Collection name {name!r}: the embedded store keeps collections in "
                f"directories, so names are lowercase; use {name.lower()!r}."
            )
        return self.root / name

    def _existing_vectors(self, path: Path) -> list[ExistingVector]:
        config = json.loads((path / "edge_config.json").read_text())
        return [
            ExistingVector(name, int(params["size"]), str(params["distance"]))
            for name, params in (config.get("vectors") or {}).items()
        ]

    def _open(self, name: str, spec: CollectionSpec | None) -> tuple[_Collection, str] | None:
        from qdrant_edge import (
            Distance,
            EdgeConfig,
            EdgeOptimizersConfig,
            EdgeShard,
            EdgeVectorParams,
        )

        path = self._path(name)
        with self._open_lock:
            if self._closed:
                raise RuntimeError("vector store is closed")
            exists = (path / "edge_config.json").exists()
            if not exists and spec is None:
                return None
            if exists:
                existing = self._existing_vectors(path)
                if spec is None:
                    vector_name = existing[0].name if len(existing) == 1 else ""
                else:
                    vector_name = pick_vector(name, spec, existing)
                coll = self._collections.get(name)
                if coll is None:
                    shard = EdgeShard.load(str(path))
                    info = shard.info()
                    coll = _Collection(shard, set(info.payload_schema))
                    # Points written before a restart still count towards the next
                    # index build (the counter itself lives in memory).
                    coll.pending_optimize = max(0, info.points_count - info.indexed_vectors_count)
                    self._collections[name] = coll
                return coll, vector_name
            assert spec is not None
            if spec.distance != "Cosine":
                raise CollectionMismatch(f"Unsupported distance {spec.distance!r}.")
            optimizers = (
                EdgeOptimizersConfig(indexing_threshold=self.indexing_threshold_kb)
                if self.indexing_threshold_kb is not None
                else None
            )
            vectors = {spec.vector_name: EdgeVectorParams(size=spec.size, distance=Distance.Cosine)}
            config = EdgeConfig(vectors=vectors, optimizers=optimizers)
            shard = EdgeShard.create(str(path), config)
            coll = _Collection(shard, set())
            self._collections[name] = coll
            for field_name in DEFAULT_INDEXED_FIELDS:
                self._index(coll, field_name, "keyword")
            return coll, spec.vector_name

    def _index(self, coll: _Collection, field_name: str, kind: IndexKind) -> None:
        from qdrant_edge import PayloadSchemaType, UpdateOperation

        key = f"metadata.{field_name}"
        if key in coll.indexed or len(coll.indexed) >= MAX_INDEXED_FIELDS:
            return
        schema = {
            "keyword": PayloadSchemaType.Keyword,
            "integer": PayloadSchemaType.Integer,
            "float": PayloadSchemaType.Float,
            "bool": PayloadSchemaType.Bool,
        }[kind]
        try:
            coll.shard.update(UpdateOperation.create_field_index(key, schema))
            coll.indexed.add(key)
        except Exception:  # an index only speeds filters up; they work without it
            log.warning("could not index %s as %s", key, kind, exc_info=True)

    async def ensure_collection(self, name: str, spec: CollectionSpec) -> str:
        opened = await asyncio.to_thread(shielded, self._open, name, spec)
        assert opened is not None
        return opened[1]

    async def collection_exists(self, name: str) -> bool:
        return (self._path(name) / "edge_config.json").exists()

    def _get(self, name: str) -> _Collection:
        coll = self._collections.get(name)
        if coll is not None:
            return coll
        opened = self._open(name, None)
        if opened is None:
            raise KeyError(name)
        return opened[0]

    # -- writing -------------------------------------------------------------------------

    def _upsert(self, name: str, vector_name: str, points: Sequence[StoredPoint]) -> None:
        from qdrant_edge import Point, UpdateOperation

        coll = self._get(name)
        edge_points = [Point(p.id, {vector_name: p.vector}, p.payload) for p in points]
        coll.shard.update(UpdateOperation.upsert_points(edge_points))
        # The WAL already makes the write survive a crashed process (checked with SIGKILL);
        # flushing segments costs milliseconds, so it happens at most every few seconds.
        now = time.monotonic()
        if now - coll.flushed_at >= FLUSH_INTERVAL:
            coll.shard.flush()
            coll.flushed_at = now
        with coll.lock:
            coll.pending_optimize += len(points)
            due = coll.pending_optimize >= self.optimize_after and coll.optimizing is None
            if due:
                coll.pending_optimize = 0
                coll.optimizing = self._optimizer.submit(self._optimize, name, coll)

    def _optimize(self, name: str, coll: _Collection) -> None:
        try:
            coll.shard.optimize()
            coll.shard.flush()
            log.info("optimized collection %s", name)
        except Exception:
            log.exception("optimizing collection %s failed; searches still work", name)
        finally:
            with coll.lock:
                coll.optimizing = None

    def optimizing(self) -> bool:
        """Whether an index build is running in the background."""
        return any(c.optimizing is not None for c in list(self._collections.values()))

    async def upsert(self, name: str, vector_name: str, points: Sequence[StoredPoint]) -> None:
        if points:
            await asyncio.to_thread(shielded, self._upsert, name, vector_name, points)

    # -- reading -------------------------------------------------------------------------

    def _edge_filter(self, coll: _Collection, conditions: Sequence[Condition]) -> Any:
        for cond in conditions:
            self._index(coll, cond.field, index_kind(cond))
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
            coll = self._get(name)
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
            return int(self._get(name).shard.count(CountRequest(exact=True)))
        except KeyError:
            return 0

    async def count(self, name: str) -> int:
        return await asyncio.to_thread(shielded, self._count, name)

    def _stored_metadata(self, name: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        try:
            coll = self._get(name)
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
            coll = self._get(name)
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
            coll = self._get(name)
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
            coll = self._get(name)
        except KeyError:
            return
        coll.shard.update(UpdateOperation.delete_points(list(ids)))

    async def delete(self, name: str, ids: Sequence[str]) -> None:
        if ids:
            await asyncio.to_thread(shielded, self._delete, name, ids)

    # -- closing -------------------------------------------------------------------------

    def _close(self) -> None:
        with self._open_lock:
            self._closed = True
            self._optimizer.shutdown(wait=True, cancel_futures=True)
            for name, coll in self._collections.items():
                try:
                    coll.shard.flush()
                    coll.shard.close()
                except Exception:
                    log.exception("closing collection %s failed", name)
            self._collections.clear()

    async def close(self) -> None:
        await asyncio.to_thread(self._close)
