"""LightRAG's vector storage in our own vector store: qdrant-edge in-process, or a Qdrant server.

``register(store)`` adds ``ShieldVectorStorage`` to LightRAG's storage registries and returns
the ``vector_db_storage_cls_kwargs`` naming the store. Each (workspace, namespace) of
LightRAG's three (chunks, entities, relationships) is one collection (``collection_name``); in
distributed mode the store is the shared Qdrant server, so every worker sees the same vectors.

Semantics of LightRAG 1.5.7's server-backed ``QdrantVectorDBStorage`` (its NanoVectorDB
buffers the same way): ``upsert``/``delete`` buffer, ``index_done_callback``/``finalize``
embed and write, so an id is embedded once per batch and an aborting batch
(``drop_pending_index_ops``) leaves no vectors; reads by id see the buffer, ``query`` does not.
A point's payload: ``document`` (the embedded text, however long), ``metadata`` (LightRAG's
other fields, its id, upsert time, ``source: "lightrag"``) and ``lightrag_vector``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from knowledge.validation import WRITE_LIMITS, check_metadata, check_unicode
from knowledge.vectorstore.base import (
    CollectionSpec,
    SearchHit,
    StoredPoint,
    VectorStore,
    check_collection_name,
)
from knowledge.vectorstore.filters import Match, MatchAny
from orchestrator.graphrag.loader import load_lightrag

# LightRAG is imported only through the loader (no `.env` of the working directory, no
# pip at run time), so before the imports below.
load_lightrag()

from lightrag import kg  # noqa: E402
from lightrag.base import BaseVectorStorage  # noqa: E402
from lightrag.constants import DEFAULT_QUERY_PRIORITY  # noqa: E402
from lightrag.utils import compute_mdhash_id  # noqa: E402

log = logging.getLogger(__name__)

STORAGE_NAME: Final = "ShieldVectorStorage"
STORE_KEY: Final = "shield_store"
VECTOR_NAME_KEY: Final = "shield_vector_name"
# On every point: the store lists ids exactly only by source (a scroll); drop() needs all.
SOURCE: Final = "lightrag"
# The vector again, as little-endian float32 in base64: the store interface returns
# payloads, never vectors, and get_vectors_by_ids must answer without embedding again
# (LightRAG's default chunk selection asks for it on every graph query). Outside
# "metadata", so qdrant_find does not show it.
VECTOR_FIELD: Final = "lightrag_vector"
_RESERVED = frozenset({"source", "lightrag_id", "created_at"})
_ID_NAMESPACE: Final = uuid.UUID("91f24401-e029-4d9b-b859-44089646610e")
# Ids per filtered fetch. With a keyword index on the field and this few matches, Qdrant
# scores the matching points exhaustively instead of walking HNSW, so none is missed.
FETCH_PAGE: Final = 100
UPSERT_PAGE: Final = 256  # points per write: bounds a Qdrant server request
DELETE_PAGE: Final = 1000

_stores: dict[str, VectorStore] = {}


def register(
    store: VectorStore,
    *,
    vector_name: str | None = None,
    cosine_better_than_threshold: float = 0.2,
) -> dict[str, Any]:
    """Make ``LightRAG(vector_storage="ShieldVectorStorage", ...)`` use ``store``.

    Returns the ``vector_db_storage_cls_kwargs`` to pass: plain values only, since LightRAG
    deep-copies its configuration. ``vector_name`` names the vector in new collections;
    give the embedder's (``Embedder.vector_name``) so a collection filled by another model
    is refused rather than mixed. By default it comes from the EmbeddingFunc's model_name.
    """
    implementations = kg.STORAGE_IMPLEMENTATIONS["VECTOR_STORAGE"]["implementations"]
    if STORAGE_NAME not in implementations:
        implementations.append(STORAGE_NAME)
    # get_storage_class imports STORAGES[name] relative to "lightrag"; an absolute module
    # name ignores that anchor.
    kg.STORAGES[STORAGE_NAME] = __name__
    kg.STORAGE_ENV_REQUIREMENTS[STORAGE_NAME] = []
    key = uuid.uuid4().hex
    _stores[key] = store
    kwargs: dict[str, Any] = {"cosine_better_than_threshold": cosine_better_than_threshold}
    kwargs[STORE_KEY] = key
    if vector_name is not None:
        kwargs[VECTOR_NAME_KEY] = vector_name
    return kwargs


def unregister(key: str) -> None:
    """Forget the store registered under ``key``; storages built later with it fail."""
    _stores.pop(key, None)


def collection_name(workspace: str, namespace: str) -> str:
    """The collection holding one namespace of one workspace (lowercase, at most 63 chars)."""
    digest = hashlib.sha1(
        workspace.encode("utf-8", "surrogatepass"), usedforsecurity=False
    ).hexdigest()[:12]
    prefix = f"lr-{digest}-"
    short = "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "-" for c in namespace)
    return check_collection_name(prefix + (short.lower()[: 63 - len(prefix)] or "default"))


def point_id(lightrag_id: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, lightrag_id))


def default_vector_name(embedding_func: Any) -> str:
    model = str(getattr(embedding_func, "model_name", None) or "")
    slug = "".join(c if c.isalnum() else "-" for c in model.lower()).strip("-")
    return slug or f"lightrag-{embedding_func.embedding_dim}d"


def _encode(vector: Sequence[float]) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def _decode(text: str) -> list[float]:
    return [float(x) for x in np.frombuffer(base64.b64decode(text), dtype="<f4")]


@dataclass
class _Pending:
    fields: dict[str, Any]  # LightRAG's meta fields as given, content included if one
    content: str
    created_at: int
    vector: list[float] | None = None


@dataclass
class ShieldVectorStorage(BaseVectorStorage):  # type: ignore[misc]
    """One LightRAG vector namespace of one workspace, kept in a ``VectorStore``."""

    def __post_init__(self) -> None:
        self._validate_embedding_func()
        kwargs = self.global_config.get("vector_db_storage_cls_kwargs") or {}
        store = _stores.get(str(kwargs.get(STORE_KEY)))
        if store is None:
            raise ValueError(
                f"{STORAGE_NAME} has no store: pass what vector_adapter.register(store) "
                "returned as vector_db_storage_cls_kwargs, and keep it registered."
            )
        if kwargs.get("cosine_better_than_threshold") is None:
            raise ValueError("vector_db_storage_cls_kwargs lacks cosine_better_than_threshold")
        self.cosine_better_than_threshold = float(kwargs["cosine_better_than_threshold"])
        self._store: VectorStore = store
        self._collection = collection_name(self.workspace or "", self.namespace)
        # LightRAG names a failing storage by this in its flush errors.
        self.final_namespace = self._collection
        self._wanted_vector: str = kwargs.get(VECTOR_NAME_KEY) or default_vector_name(
            self.embedding_func
        )
        self._dimension = int(self.embedding_func.embedding_dim)
        self._vector_name: str | None = None
        self._batch = max(1, int(self.global_config.get("embedding_batch_num") or 10))
        self._pending: dict[str, _Pending] = {}
        self._deleting: set[str] = set()
        self._lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    async def initialize(self) -> None:
        await self._ready()

    async def finalize(self) -> None:
        # The store belongs to whoever registered it (other workspaces share it): not closed.
        await self._flush()

    async def index_done_callback(self) -> None:
        await self._flush()

    async def drop_pending_index_ops(self) -> None:
        async with self._lock:
            self._pending.clear()
            self._deleting.clear()

    async def drop(self) -> dict[str, str]:
        try:
            async with self._lock:
                self._pending.clear()
                self._deleting.clear()
                await self._ready()
                ids = sorted(await self._store.source_ids(self._collection, SOURCE))
                for start in range(0, len(ids), DELETE_PAGE):
                    await self._store.delete(self._collection, ids[start : start + DELETE_PAGE])
        except Exception as exc:
            log.error("dropping %s failed: %s", self._collection, exc)
            return {"status": "error", "message": str(exc)}
        return {"status": "success", "message": "data dropped"}

    # -- writing ---------------------------------------------------------------------------

    async def upsert(self, data: dict[str, dict[str, Any]]) -> None:
        if not data:
            return
        now = int(time.time())
        fresh = {
            str(key): _Pending(
                fields={k: v for k, v in value.items() if k in self.meta_fields},
                content=str(value["content"]),
                created_at=now,
            )
            for key, value in data.items()
        }
        async with self._lock:
            for key, pending in fresh.items():
                # A new version replaces a buffered one (and any vector cached for it), and
                # overrides a buffered delete of the same id.
                self._deleting.discard(key)
                self._pending[key] = pending

    async def delete(self, ids: Iterable[str]) -> None:
        async with self._lock:
            for key in ids:
                self._pending.pop(key, None)
                self._deleting.add(key)

    async def delete_entity(self, entity_name: str) -> None:
        await self.delete([compute_mdhash_id(entity_name, prefix="ent-")])

    async def delete_entity_relation(self, entity_name: str) -> None:
        """Remove every relation with ``entity_name`` at either end, at once.

        Immediate, as in QdrantVectorDBStorage; buffered relations are pruned only after
        the store's delete succeeded, so a failure leaves the buffer for a retry.
        """
        async with self._lock:
            for end in ("src_id", "tgt_id"):
                removed: set[str] = set()
                while True:  # one page at a time keeps each filtered search exhaustive
                    hits = await self._matching(Match(end, entity_name), FETCH_PAGE)
                    ids = [h.id for h in hits if h.id not in removed]
                    if not ids:
                        break
                    await self._store.delete(self._collection, ids)
                    removed.update(ids)
            for key, p in list(self._pending.items()):
                if entity_name in (p.fields.get("src_id"), p.fields.get("tgt_id")):
                    del self._pending[key]

    async def _flush(self) -> None:
        async with self._lock:
            if not self._pending and not self._deleting:
                return
            vector_name = await self._ready()
            # On any failure below both buffers stay as they are, for the next flush.
            await self._embed(list(self._pending.values()))
            points = [self._point(key, p) for key, p in self._pending.items()]
            for start in range(0, len(points), UPSERT_PAGE):
                await self._store.upsert(
                    self._collection, vector_name, points[start : start + UPSERT_PAGE]
                )
            gone = [point_id(key) for key in sorted(self._deleting)]
            for start in range(0, len(gone), DELETE_PAGE):
                await self._store.delete(self._collection, gone[start : start + DELETE_PAGE])
            self._pending.clear()
            self._deleting.clear()

    async def _embed(self, pending: Sequence[_Pending]) -> None:
        """Give every pending record without one its vector (caller holds the lock)."""
        todo = [p for p in pending if p.vector is None]
        batches = [todo[i : i + self._batch] for i in range(0, len(todo), self._batch)]
        results = await asyncio.gather(
            *(self.embedding_func([p.content for p in b], context="document") for b in batches)
        )
        for batch, result in zip(batches, results, strict=True):
            rows = np.asarray(result, dtype=np.float32)
            if rows.shape != (len(batch), self._dimension):
                raise RuntimeError(
                    f"[{self.workspace}] {self.namespace}: the embedding function returned "
                    f"{rows.shape} for {len(batch)} texts of dimension {self._dimension}"
                )
            for p, row in zip(batch, rows, strict=True):
                p.vector = row.tolist()

    def _point(self, key: str, pending: _Pending) -> StoredPoint:
        assert pending.vector is not None
        where = f"LightRAG {self.namespace} {key!r}"
        metadata = {k: v for k, v in pending.fields.items() if k != "content"}
        metadata.update(source=SOURCE, lightrag_id=key, created_at=pending.created_at)
        payload = {
            "document": check_unicode(f"{where} content", pending.content),
            "metadata": check_metadata(f"{where} metadata", metadata, WRITE_LIMITS),
            VECTOR_FIELD: _encode(pending.vector),
        }
        return StoredPoint(point_id(key), pending.vector, payload)

    # -- reading ---------------------------------------------------------------------------

    async def query(
        self, query: str, top_k: int, query_embedding: Any = None
    ) -> list[dict[str, Any]]:
        if top_k <= 0:
            return []
        if query_embedding is None:
            embedded = await self.embedding_func(
                [query], context="query", _priority=DEFAULT_QUERY_PRIORITY
            )
            query_embedding = embedded[0]
        vector: list[float] = np.asarray(query_embedding, dtype=np.float64).tolist()
        hits = await self._store.search(
            self._collection,
            await self._ready(),
            vector,
            limit=top_k,
            score_threshold=self.cosine_better_than_threshold,
        )
        records = [(self._stored_record(hit.payload), hit.score) for hit in hits]
        # Points another tool stored in the collection have no LightRAG id: not ours.
        return [{**record, "distance": score} for record, score in records if record is not None]

    async def get_by_id(self, id: str) -> dict[str, Any] | None:
        return (await self.get_by_ids([id]))[0]

    async def get_by_ids(self, ids: list[str]) -> list[dict[str, Any] | None]:
        """One entry per id, in order; None where the id is not stored."""
        buffered: dict[str, dict[str, Any] | None] = {}
        async with self._lock:
            for key in ids:
                if key in self._deleting:
                    buffered[key] = None
                elif (p := self._pending.get(key)) is not None:
                    buffered[key] = {**p.fields, "id": key, "created_at": p.created_at}
        found = await self._fetch([key for key in ids if key not in buffered])
        for key, hit in found.items():
            buffered[key] = self._stored_record(hit.payload)
        return [buffered.get(key) for key in ids]

    async def get_vectors_by_ids(self, ids: list[str]) -> dict[str, list[float]]:
        vectors: dict[str, list[float]] = {}
        remaining: list[str] = []
        async with self._lock:
            pending = {key: self._pending[key] for key in ids if key in self._pending}
            # Embedded now and kept, so the flush does not embed them again.
            await self._embed(list(pending.values()))
            for key in ids:
                vector = pending[key].vector if key in pending else None
                if vector is not None:
                    vectors[key] = vector
                elif key not in self._deleting:
                    remaining.append(key)
        for key, hit in (await self._fetch(remaining)).items():
            encoded = hit.payload.get(VECTOR_FIELD)
            if isinstance(encoded, str):
                vectors[key] = _decode(encoded)
        return vectors

    async def _fetch(self, ids: Sequence[str]) -> dict[str, SearchHit]:
        """The stored points of these LightRAG ids, by id (missing ones left out)."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, SearchHit] = {}
        for start in range(0, len(wanted), FETCH_PAGE):
            page = tuple(wanted[start : start + FETCH_PAGE])
            for hit in await self._matching(MatchAny("lightrag_id", page), len(page)):
                key = (hit.payload.get("metadata") or {}).get("lightrag_id")
                if isinstance(key, str):
                    found[key] = hit
        return found

    def _stored_record(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        metadata = payload.get("metadata")
        if not isinstance(metadata, dict) or not isinstance(metadata.get("lightrag_id"), str):
            return None
        record = {k: v for k, v in metadata.items() if k not in _RESERVED}
        if "content" in self.meta_fields:
            record["content"] = payload.get("document", "")
        record.update(id=metadata["lightrag_id"], created_at=metadata.get("created_at"))
        return record

    async def _matching(self, condition: Match | MatchAny, limit: int) -> list[SearchHit]:
        """Up to ``limit`` points meeting ``condition``: the filter decides, not the vector."""
        probe = [1.0] + [0.0] * (self._dimension - 1)
        vector_name = await self._ready()
        return await self._store.search(
            self._collection, vector_name, probe, limit=limit, conditions=[condition]
        )

    async def _ready(self) -> str:
        if self._vector_name is None:
            spec = CollectionSpec(self._wanted_vector, self._dimension)
            self._vector_name = await self._store.ensure_collection(self._collection, spec)
        return self._vector_name
