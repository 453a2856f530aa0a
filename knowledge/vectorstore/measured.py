"""A :class:`VectorStore` around a backend that measures every operation.

``store`` is the backend's kind ("edge" or "qdrant"): a label value from the code, like
the operation names; collection names never become labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from knowledge.metrics import store_operation
from knowledge.vectorstore.base import CollectionSpec, SearchHit, StoredPoint, VectorStore
from knowledge.vectorstore.filters import Condition


class MeasuredStore(VectorStore):
    def __init__(self, inner: VectorStore, store: str) -> None:
        self.inner = inner
        self.kind = store

    async def ensure_collection(self, name: str, spec: CollectionSpec) -> str:
        with store_operation(self.kind, "ensure_collection"):
            return await self.inner.ensure_collection(name, spec)

    async def collection_exists(self, name: str) -> bool:
        with store_operation(self.kind, "collection_exists"):
            return await self.inner.collection_exists(name)

    async def ping(self, name: str) -> None:
        # Not measured: probe traffic would inflate the operation rates dashboards show.
        await self.inner.ping(name)

    async def upsert(self, name: str, vector_name: str, points: Sequence[StoredPoint]) -> None:
        with store_operation(self.kind, "upsert"):
            await self.inner.upsert(name, vector_name, points)

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
        with store_operation(self.kind, "search"):
            return await self.inner.search(
                name,
                vector_name,
                vector,
                limit=limit,
                offset=offset,
                conditions=conditions,
                score_threshold=score_threshold,
            )

    async def count(self, name: str) -> int:
        with store_operation(self.kind, "count"):
            return await self.inner.count(name)

    async def stored_metadata(self, name: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        with store_operation(self.kind, "stored_metadata"):
            return await self.inner.stored_metadata(name, ids)

    async def update_metadata(self, name: str, metadata: Mapping[str, dict[str, Any]]) -> None:
        with store_operation(self.kind, "update_metadata"):
            await self.inner.update_metadata(name, metadata)

    async def source_ids(self, name: str, source: str) -> set[str]:
        with store_operation(self.kind, "source_ids"):
            return await self.inner.source_ids(name, source)

    async def delete(self, name: str, ids: Sequence[str]) -> None:
        with store_operation(self.kind, "delete"):
            await self.inner.delete(name, ids)

    async def close(self) -> None:
        await self.inner.close()
