"""The vector store interface, and the checks every backend shares."""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from knowledge.errors import CollectionMismatch, InvalidInput
from knowledge.vectorstore.filters import Condition

# Collection names become directory names in the embedded store: keep them to a
# portable subset and refuse anything that could walk the file system.
COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


# Vector names that say which model made them: "<provider>-<model>" from our embedders,
# "fast-<model>" from fastembed (mcp-server-qdrant).
MODEL_VECTOR_PREFIXES = ("local-", "ollama-", "openai-", "fast-")


def check_collection_name(name: str) -> str:
    if not COLLECTION_NAME.fullmatch(name):
        raise InvalidInput(
            f"Collection name {name!r} is not allowed: use 1-63 letters, digits, '_' or '-', "
            "starting with a letter or digit (e.g. 'team-notes')."
        )
    return name


@dataclass(frozen=True)
class CollectionSpec:
    """What a collection must be like to hold our vectors."""

    vector_name: str
    size: int
    distance: str = "Cosine"


@dataclass(frozen=True)
class StoredPoint:
    id: str
    vector: list[float]
    payload: dict[str, Any]


@dataclass(frozen=True)
class SearchHit:
    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExistingVector:
    name: str
    size: int
    distance: str


def pick_vector(collection: str, spec: CollectionSpec, existing: Sequence[ExistingVector]) -> str:
    """The vector name to use in an existing collection, or a refusal naming what differs.

    A collection made by another tool is used when it has exactly one dense vector of our
    size and distance, whatever it is called (the peers break on a different name).
    """
    if not existing:
        raise CollectionMismatch(
            f"Collection {collection!r} exists but has no dense vectors; "
            "choose another collection name."
        )
    by_name = {v.name: v for v in existing}
    if spec.vector_name in by_name:
        candidates = [by_name[spec.vector_name]]
    elif len(existing) == 1:
        candidates = list(existing)
    else:
        candidates = [v for v in existing if v.size == spec.size and v.distance == spec.distance]
        if len(candidates) != 1:
            found = ", ".join(f"{v.name or '(unnamed)'}: {v.size}-d {v.distance}" for v in existing)
            raise CollectionMismatch(
                f"Collection {collection!r} has several vectors ({found}) and none is "
                f"unambiguously ours ({spec.size}-d {spec.distance}); "
                "choose another collection name."
            )
    chosen = candidates[0]
    if chosen.name != spec.vector_name and chosen.name.startswith(MODEL_VECTOR_PREFIXES):
        # Named after another embedding model (by us or by fastembed/mcp-server-qdrant):
        # same size or not, its vectors live in another space and must not be mixed.
        raise CollectionMismatch(
            f"Collection {collection!r} holds {chosen.size}-d vectors of another embedding "
            f"model (vector {chosen.name!r}); this server embeds {spec.size}-d vectors with "
            f"{spec.vector_name!r}. Use another collection, or the model that filled this one."
        )
    if chosen.size != spec.size or chosen.distance != spec.distance:
        raise CollectionMismatch(
            f"Collection {collection!r} holds {chosen.size}-d {chosen.distance} vectors "
            f"(vector {chosen.name or '(unnamed)'!r}), but the embedding model gives "
            f"{spec.size}-d {spec.distance} vectors. Use another collection, or the model "
            "that filled this one."
        )
    return chosen.name


class VectorStore(abc.ABC):
    """A set of named collections of vectors with JSON payloads."""

    @abc.abstractmethod
    async def ensure_collection(self, name: str, spec: CollectionSpec) -> str:
        """Create the collection if missing; return the vector name to use in it.

        Raises CollectionMismatch when an existing collection cannot hold ``spec``.
        """

    @abc.abstractmethod
    async def collection_exists(self, name: str) -> bool: ...

    @abc.abstractmethod
    async def ping(self, name: str) -> None:
        """Raise unless the store would serve ``name`` now (whether it exists or not).

        For health probes only: it bypasses circuit breakers and is not measured, so probes
        neither trip a breaker real calls use nor count as store traffic.
        """

    @abc.abstractmethod
    async def upsert(self, name: str, vector_name: str, points: Sequence[StoredPoint]) -> None: ...

    @abc.abstractmethod
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
    ) -> list[SearchHit]: ...

    @abc.abstractmethod
    async def count(self, name: str) -> int: ...

    @abc.abstractmethod
    async def stored_metadata(self, name: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The ``metadata`` of each point among ``ids`` that is stored (none if missing)."""

    @abc.abstractmethod
    async def update_metadata(self, name: str, metadata: Mapping[str, dict[str, Any]]) -> None:
        """Replace the ``metadata`` of stored points (id -> new metadata); text and vector
        stay. Ids that are not stored are ignored."""

    @abc.abstractmethod
    async def source_ids(self, name: str, source: str) -> set[str]:
        """Ids of every point whose ``metadata.source`` is ``source`` (none if missing)."""

    @abc.abstractmethod
    async def delete(self, name: str, ids: Sequence[str]) -> None:
        """Remove these points; ids that are not stored are ignored."""

    @abc.abstractmethod
    async def close(self) -> None: ...
