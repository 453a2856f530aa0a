"""The knowledge service: validate, embed, store and search. No MCP or HTTP in here."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from knowledge.embeddings.base import Embedder, Vector
from knowledge.errors import InvalidInput
from knowledge.validation import (
    DEFAULT_METADATA_LIMITS,
    WRITE_LIMITS,
    MetadataLimits,
    check_metadata,
    check_text,
    check_unicode,
)
from knowledge.vectorstore.base import (
    CollectionSpec,
    StoredPoint,
    VectorStore,
    check_collection_name,
)
from knowledge.vectorstore.filters import parse_filter
from knowledge.vectorstore.ids import content_hash, point_id


@dataclass(frozen=True)
class Limits:
    max_batch: int = 256
    max_text_chars: int = 100_000
    metadata: MetadataLimits = DEFAULT_METADATA_LIMITS
    max_query_chars: int = 4_000
    max_limit: int = 100
    max_offset: int = 10_000


@dataclass(frozen=True)
class Document:
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreResult:
    collection: str
    ids: list[str]
    # What was embedded for this call, by content hash: another index of the same texts
    # (LightRAG) takes them instead of embedding again.
    vectors: dict[str, Vector] = field(default_factory=dict)

    @property
    def stored(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class NewStoreResult:
    """What ``store_new_documents`` did: ids written, and ids already stored as they are."""

    collection: str
    ids: list[str]
    skipped: list[str]  # stored already, text and metadata alike
    updated: list[str] = field(default_factory=list)  # text stored already, metadata rewritten
    vectors: dict[str, Vector] = field(default_factory=dict)  # as in StoreResult

    @property
    def stored(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    text: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class FindResult:
    collection: str
    results: list[Hit]
    limit: int
    offset: int

    max_offset: int = Limits.max_offset

    @property
    def next_offset(self) -> int | None:
        """Where the next page starts, or None when this page was the last one we serve."""
        following = self.offset + len(self.results)
        if len(self.results) < self.limit or following > self.max_offset:
            return None
        return following


def _without(metadata: Mapping[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if k not in keys}


class KnowledgeService:
    def __init__(
        self,
        embedder: Embedder,
        store: VectorStore,
        *,
        default_collection: str,
        limits: Limits | None = None,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.default_collection = check_collection_name(default_collection)
        self.limits = limits or Limits()
        self._vector_names: dict[str, str] = {}

    def _collection(self, name: str | None) -> str:
        return check_collection_name(self.default_collection if name is None else name)

    def validate_documents(self, documents: Sequence[Mapping[str, Any]]) -> list[Document]:
        if not documents:
            raise InvalidInput("documents is empty; give at least one {text, metadata} item.")
        if len(documents) > self.limits.max_batch:
            raise InvalidInput(
                f"{len(documents)} documents in one call; the limit is "
                f"{self.limits.max_batch}. Send them in several calls."
            )
        out = []
        for i, doc in enumerate(documents):
            if not isinstance(doc, Mapping):
                raise InvalidInput(f"documents[{i}] must be an object with 'text' and 'metadata'.")
            out.append(self._document(f"documents[{i}].", doc.get("text"), doc.get("metadata")))
        return out

    def single_document(self, text: Any, metadata: Any) -> Document:
        return self._document("", text, metadata)

    def _document(self, where: str, text: Any, metadata: Any) -> Document:
        return Document(
            check_text(f"{where}text", text, self.limits.max_text_chars),
            check_metadata(f"{where}metadata", metadata, self.limits.metadata),
        )

    async def _vector_name(self, collection: str) -> str:
        name = self._vector_names.get(collection)
        if name is None:
            spec = CollectionSpec(self.embedder.vector_name, await self.embedder.dimension())
            name = await self.store.ensure_collection(collection, spec)
            self._vector_names[collection] = name
        return name

    async def store_documents(
        self, documents: Sequence[Document], collection: str | None = None
    ) -> StoreResult:
        name = self._collection(collection)
        # Checked here too, whoever built the documents (the pipeline adds its own keys):
        # nothing the engine cannot read back may reach it.
        for i, doc in enumerate(documents):
            check_text(f"documents[{i}].text", doc.text, self.limits.max_text_chars)
            check_metadata(f"documents[{i}].metadata", doc.metadata, WRITE_LIMITS)
        # Embed before touching the store: a failed embedding leaves nothing behind,
        # not even an empty collection.
        vectors = await self.embedder.embed_documents([d.text for d in documents])
        vector_name = await self._vector_name(name)
        now = datetime.now(UTC).isoformat()
        points = []
        embedded: dict[str, Vector] = {}
        for doc, vector in zip(documents, vectors, strict=True):
            digest = content_hash(doc.text)
            embedded[digest] = vector
            source = str(doc.metadata.get("source", ""))
            points.append(
                StoredPoint(
                    point_id(name, source, digest),
                    vector,
                    {
                        "document": doc.text,
                        "metadata": doc.metadata,
                        "content_hash": digest,
                        "stored_at": now,
                    },
                )
            )
        await self.store.upsert(name, vector_name, points)
        return StoreResult(name, [p.id for p in points], embedded)

    def document_id(self, document: Document, collection: str) -> str:
        """The point id ``document`` gets in ``collection`` (deterministic, see ids.py)."""
        source = str(document.metadata.get("source", ""))
        return point_id(collection, source, content_hash(document.text))

    async def store_new_documents(
        self,
        documents: Sequence[Document],
        collection: str | None = None,
        *,
        volatile_keys: frozenset[str] = frozenset(),
    ) -> NewStoreResult:
        """Embed and store only texts not stored yet; bring the rest's metadata up to date.

        A point's id comes from its collection, source and text hash, so a stored id means
        the same text from the same source: re-ingesting it costs no embedding. When its
        metadata differs (apart from ``volatile_keys``, such as when and by which job it
        was written) the stored metadata is replaced in place, so a re-ingest that changes
        metadata is findable by it. A text repeated within the batch counts once.
        """
        name = self._collection(collection)
        ids = [self.document_id(doc, name) for doc in documents]
        stored = await self.store.stored_metadata(name, list(dict.fromkeys(ids)))
        fresh: list[Document] = []
        skipped: list[str] = []
        changed: dict[str, dict[str, Any]] = {}
        seen: set[str] = set()
        for i, (doc, pid) in enumerate(zip(documents, ids, strict=True)):
            if pid in seen:
                skipped.append(pid)
            elif pid not in stored:
                fresh.append(doc)
            elif _without(stored[pid], volatile_keys) == _without(doc.metadata, volatile_keys):
                skipped.append(pid)
            else:
                changed[pid] = check_metadata(
                    f"documents[{i}].metadata", doc.metadata, WRITE_LIMITS
                )
            seen.add(pid)
        written = await self.store_documents(fresh, name) if fresh else StoreResult(name, [])
        await self.store.update_metadata(name, changed)
        return NewStoreResult(name, written.ids, skipped, list(changed), written.vectors)

    async def remove_stale(
        self, source: str, keep: Sequence[str], collection: str | None = None
    ) -> int:
        """Delete points of ``source`` whose ids are not in ``keep``; return how many.

        After a changed document is stored again, its old passages (other text, so other
        ids) would otherwise linger and answer searches with outdated text.
        """
        name = self._collection(collection)
        stale = await self.store.source_ids(name, source) - set(keep)
        if stale:
            await self.store.delete(name, sorted(stale))
        return len(stale)

    async def find(
        self,
        query: str,
        *,
        limit: int = 10,
        offset: int = 0,
        filter: Mapping[str, Any] | None = None,
        score_threshold: float | None = None,
        collection: str | None = None,
    ) -> FindResult:
        lim = self.limits
        if not isinstance(query, str) or not query.strip():
            raise InvalidInput("query is empty; say what to search for.")
        if len(query) > lim.max_query_chars:
            raise InvalidInput(
                f"query has {len(query)} characters; the limit is {lim.max_query_chars}."
            )
        check_unicode("query", query)
        if not 1 <= limit <= lim.max_limit:
            raise InvalidInput(f"limit must be between 1 and {lim.max_limit} (got {limit}).")
        if not 0 <= offset <= lim.max_offset:
            raise InvalidInput(f"offset must be between 0 and {lim.max_offset} (got {offset}).")
        if score_threshold is not None and (
            not math.isfinite(score_threshold) or not -1.0 <= score_threshold <= 1.0
        ):
            raise InvalidInput("score_threshold is a cosine similarity between -1 and 1.")
        conditions = parse_filter(filter)
        name = self._collection(collection)
        if name not in self._vector_names and not await self.store.collection_exists(name):
            raise InvalidInput(await self._missing(name))
        vector = await self.embedder.embed_query(query)
        vector_name = await self._vector_name(name)
        hits = await self.store.search(
            name,
            vector_name,
            vector,
            limit=limit,
            offset=offset,
            conditions=conditions,
            score_threshold=score_threshold,
        )
        results = [
            Hit(
                h.id,
                h.score,
                str(h.payload.get("document", "")),
                dict(h.payload.get("metadata") or {}),
            )
            for h in hits
        ]
        return FindResult(name, results, limit, offset, lim.max_offset)

    async def _missing(self, name: str) -> str:
        """Why a search of ``name`` cannot run, and where else to look."""
        message = (
            f"Collection {name!r} does not exist yet. Store something in it first "
            "(qdrant_store, or ingest_doc / crawl_web)"
        )
        default = self.default_collection
        if name != default and await self.store.collection_exists(default):
            return f"{message}, or search the default collection {default!r}."
        return message + "."

    async def close(self) -> None:
        await self.store.close()
        await self.embedder.aclose()
