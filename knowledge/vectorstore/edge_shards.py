"""The embedded store's shards: opening and creating them, their payload indexes, and the
upkeep their writes call for (a flush every few seconds, an index build in the background).

One qdrant-edge shard per collection under ``<data_dir>/collections/<name>``. Every call
here blocks: EdgeVectorStore runs them in worker threads.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from knowledge.errors import CollectionMismatch, InvalidInput
from knowledge.vectorstore.base import (
    CollectionSpec,
    ExistingVector,
    check_collection_name,
    pick_vector,
)
from knowledge.vectorstore.filters import MAX_INDEXED_FIELDS, IndexKind
from shield_common import priority

log = logging.getLogger(__name__)

# Indexed from the start: every writer sets it and users filter by it most.
DEFAULT_INDEXED_FIELDS = ("source",)
FLUSH_INTERVAL = 5.0  # seconds


class Shard:
    """One collection's open shard and what is known about it."""

    def __init__(self, shard: Any, indexed: set[str]) -> None:
        self.shard = shard
        self.indexed = indexed
        self.pending_optimize = 0
        self.flushed_at = time.monotonic()
        self.optimizing: Future[None] | None = None
        self.lock = threading.Lock()


class EdgeShards:
    """The open shards of one data directory, by collection name."""

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
        self._collections: dict[str, Shard] = {}
        self._open_lock = threading.Lock()
        # Building an index is background work: no request waits for it.
        self._optimizer = priority.background_executor("optimize")
        self._closed = False

    def path(self, name: str) -> Path:
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

    def open(self, name: str, spec: CollectionSpec | None) -> tuple[Shard, str] | None:
        from qdrant_edge import (
            Distance,
            EdgeConfig,
            EdgeOptimizersConfig,
            EdgeShard,
            EdgeVectorParams,
        )

        path = self.path(name)
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
                    coll = Shard(shard, set(info.payload_schema))
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
            coll = Shard(shard, set())
            self._collections[name] = coll
            for field_name in DEFAULT_INDEXED_FIELDS:
                self.index(coll, field_name, "keyword")
            return coll, spec.vector_name

    def index(self, coll: Shard, field_name: str, kind: IndexKind) -> None:
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

    def get(self, name: str) -> Shard:
        coll = self._collections.get(name)
        if coll is not None:
            return coll
        opened = self.open(name, None)
        if opened is None:
            raise KeyError(name)
        return opened[0]

    def wrote(self, name: str, coll: Shard, points: int) -> None:
        """After a write: flush now and then, and schedule an index build when due."""
        # The WAL already makes the write survive a crashed process (checked with SIGKILL);
        # flushing segments costs milliseconds, so it happens at most every few seconds.
        now = time.monotonic()
        if now - coll.flushed_at >= FLUSH_INTERVAL:
            coll.shard.flush()
            coll.flushed_at = now
        with coll.lock:
            coll.pending_optimize += points
            due = coll.pending_optimize >= self.optimize_after and coll.optimizing is None
            if due:
                coll.pending_optimize = 0
                coll.optimizing = self._optimizer.submit(self._optimize, name, coll)

    def _optimize(self, name: str, coll: Shard) -> None:
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

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
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
