"""Shared plumbing for embedders that call a remote service through a breaker."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence

from knowledge.breakers import Breaker
from knowledge.embeddings.base import Embedder, Vector, batched
from knowledge.errors import DependencyRejected


class RemoteEmbedder(Embedder):
    """Batches texts, sends each batch through the breaker, checks the answer's shape."""

    def __init__(self, *, model: str, batch_size: int, breaker: Breaker) -> None:
        self.model = model
        self.batch_size = batch_size
        self.breaker = breaker
        self._dimension: int | None = None

    async def _embed_batch(self, texts: Sequence[str]) -> list[Vector]:
        """One request to the service; raise DependencyFailure when it is unwell."""
        raise NotImplementedError

    async def dimension(self) -> int:
        if self._dimension is None:
            await self.embed_documents(["dimension probe"])
        assert self._dimension is not None
        return self._dimension

    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        out: list[Vector] = []
        call: Callable[[Sequence[str]], Awaitable[list[Vector]]] = self._embed_batch
        for batch in batched(texts, self.batch_size):
            vectors = await self.breaker.call(call, batch)
            if len(vectors) != len(batch):
                raise DependencyRejected(
                    f"{self.provider} returned {len(vectors)} embeddings for {len(batch)} "
                    f"texts (model {self.model!r}); check that the endpoint is an "
                    "embeddings API."
                )
            for vector in vectors:
                self._check_size(vector)
            out.extend(vectors)
        return out

    def _check_size(self, vector: Vector) -> None:
        if not vector:
            raise DependencyRejected(
                f"{self.provider} model {self.model!r} returned an empty vector."
            )
        if not all(math.isfinite(x) for x in vector):
            # A NaN vector would be stored and then never come back in any search.
            raise DependencyRejected(
                f"{self.provider} model {self.model!r} returned a vector with NaN or "
                "infinite values."
            )
        if self._dimension is None:
            self._dimension = len(vector)
        elif len(vector) != self._dimension:
            raise DependencyRejected(
                f"{self.provider} model {self.model!r} returned a vector of size {len(vector)} "
                f"after earlier ones of size {self._dimension}; was the model changed?"
            )
