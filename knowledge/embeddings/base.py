"""The embedding interface every provider implements."""

from __future__ import annotations

import abc
from collections.abc import Sequence

Vector = list[float]


class Embedder(abc.ABC):
    """Turns texts into vectors of a fixed size.

    Implementations batch internally, keep the event loop free (CPU work in a thread,
    network calls async) and raise :class:`knowledge.errors.KnowledgeError` subclasses
    with messages a person can act on.
    """

    #: Provider name, e.g. ``local``; part of cache keys and metric labels.
    provider: str
    #: Model name as the provider knows it.
    model: str

    @abc.abstractmethod
    async def dimension(self) -> int:
        """Vector size; may call the provider once to find out."""

    @abc.abstractmethod
    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        """One vector per text, in order."""

    async def embed_query(self, text: str) -> Vector:
        vectors = await self.embed_documents([text])
        return vectors[0]

    @property
    def vector_name(self) -> str:
        """Name of the vector in new collections, derived from the model (as the peers do)."""
        slug = "".join(c if c.isalnum() else "-" for c in self.model.lower()).strip("-")
        return f"{self.provider}-{slug}"

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most providers hold nothing
        """Release network clients or sessions."""


def batched(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
