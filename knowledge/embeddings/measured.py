"""An :class:`Embedder` around any provider that measures every call it makes.

The query cache sits outside it (wiring.build_embedder), so a cached query costs no
embedding call and is not measured as one; ``embedding_query_cache_total`` counts those.
"""

from __future__ import annotations

from collections.abc import Sequence

from knowledge import metrics
from knowledge.embeddings.base import Embedder, Vector


class MeasuredEmbedder(Embedder):
    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.model = inner.model

    async def dimension(self) -> int:
        return await self.inner.dimension()

    @property
    def vector_name(self) -> str:
        return self.inner.vector_name

    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        with metrics.embedding(self.provider, "document", len(texts)):
            return await self.inner.embed_documents(texts)

    async def embed_query(self, text: str) -> Vector:
        with metrics.embedding(self.provider, "query", 1):
            return await self.inner.embed_query(text)

    async def aclose(self) -> None:
        await self.inner.aclose()
