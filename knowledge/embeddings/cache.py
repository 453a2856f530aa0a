"""A bounded LRU cache of query embeddings in front of any :class:`Embedder`.

Only queries are cached: an assistant repeats and rephrases searches, while stored
documents are embedded once. Keys are (provider, model, sha256 of the text), so the
cache never holds the query text itself.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

from prometheus_client import Counter

from knowledge.embeddings.base import Embedder, Vector

CACHE_LOOKUPS = Counter(
    "embedding_query_cache_total",
    "Query embedding cache lookups by result (hit or miss).",
    ["result"],
)
for _result in ("hit", "miss"):  # at zero: Prometheus misses a new series' first increment
    CACHE_LOOKUPS.labels(_result)


class CachedEmbedder(Embedder):
    def __init__(self, inner: Embedder, *, max_entries: int = 1024) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self.inner = inner
        self.provider = inner.provider
        self.model = inner.model
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[bytes, Vector] = OrderedDict()

    def _key(self, text: str) -> bytes:
        digest = hashlib.sha256()
        for part in (self.provider, self.model, text):
            digest.update(part.encode())
            digest.update(b"\0")
        return digest.digest()

    async def dimension(self) -> int:
        return await self.inner.dimension()

    @property
    def vector_name(self) -> str:
        return self.inner.vector_name

    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        return await self.inner.embed_documents(texts)

    async def embed_query(self, text: str) -> Vector:
        key = self._key(text)
        cached = self._entries.get(key)
        if cached is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            CACHE_LOOKUPS.labels("hit").inc()
            return cached
        self.misses += 1
        CACHE_LOOKUPS.labels("miss").inc()
        vector = await self.inner.embed_query(text)
        if self.max_entries:
            self._entries[key] = vector
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return vector

    def __len__(self) -> int:
        return len(self._entries)

    async def aclose(self) -> None:
        await self.inner.aclose()
