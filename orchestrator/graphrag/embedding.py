"""The project's embedder as LightRAG's ``EmbeddingFunc``, with the job's vectors reused.

An ingestion job embeds each new chunk once for Qdrant; LightRAG then asks for the same
texts. ``VectorCache`` holds what the job embedded (by content hash, the hash the point
ids use) while the job feeds LightRAG, so the second index costs no embedding. Misses
(a chunk Qdrant already had, LightRAG's entity and relation descriptions) go to the
embedder, and questions to its query cache; it is behind the same breakers as every other
embedding call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from knowledge.embeddings.base import Embedder, Vector
from knowledge.vectorstore.ids import content_hash

# Our chunks are cut well below this by the embedding model's tokenizer; the figure only
# keeps LightRAG from splitting a chunk again (which would change its text).
MAX_TOKEN_SIZE = 8192


class VectorCache:
    """Vectors the running jobs computed, by text hash; each job holds its own while it runs."""

    def __init__(self) -> None:
        self._vectors: dict[str, Vector] = {}
        self._holders: dict[str, int] = {}
        self.hits = 0
        self.misses = 0

    @contextlib.contextmanager
    def holding(self, vectors: Mapping[str, Vector]) -> Iterator[None]:
        for digest, vector in vectors.items():
            self._vectors[digest] = vector
            self._holders[digest] = self._holders.get(digest, 0) + 1
        try:
            yield
        finally:
            for digest in vectors:
                left = self._holders.get(digest, 1) - 1
                if left <= 0:
                    self._holders.pop(digest, None)
                    self._vectors.pop(digest, None)
                else:
                    self._holders[digest] = left

    def get(self, text: str) -> Vector | None:
        vector = self._vectors.get(content_hash(text))
        if vector is None:
            self.misses += 1
        else:
            self.hits += 1
        return vector

    def __len__(self) -> int:
        return len(self._vectors)


async def embed_texts(embedder: Embedder, cache: VectorCache, texts: Sequence[str]) -> list[Vector]:
    found = [cache.get(text) for text in texts]
    missing = [i for i, vector in enumerate(found) if vector is None]
    if missing:
        fresh = await embedder.embed_documents([texts[i] for i in missing])
        for i, vector in zip(missing, fresh, strict=True):
            found[i] = vector
    return [vector for vector in found if vector is not None]


def embedding_func(embedder: Embedder, cache: VectorCache, dimension: int) -> Any:
    """A ``lightrag.utils.EmbeddingFunc`` (model name and dimension declared)."""
    import numpy as np
    from lightrag.utils import EmbeddingFunc

    async def embed(texts: list[str], context: str | None = None, **_: Any) -> Any:
        if context == "query" and len(texts) == 1:
            # A question: through the embedder's query cache, as qdrant_find's are.
            vectors = [await embedder.embed_query(texts[0])]
        else:
            vectors = await embed_texts(embedder, cache, list(texts))
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), dimension)

    return EmbeddingFunc(
        embedding_dim=dimension,
        func=embed,
        max_token_size=MAX_TOKEN_SIZE,
        model_name=f"{embedder.provider}-{embedder.model}",
        supports_asymmetric=True,  # so LightRAG says which texts are questions
    )
