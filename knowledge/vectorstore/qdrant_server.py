"""The server backend: a Qdrant server through ``AsyncQdrantClient``, behind a circuit breaker.

qdrant-client's ``":memory:"`` location speaks the same API, which is how the tests run
this code path without a Qdrant server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from knowledge.breakers import Breaker, DependencyFailure
from knowledge.errors import DependencyRejected, KnowledgeError
from knowledge.redact import safe_url
from knowledge.vectorstore.base import (
    CollectionSpec,
    ExistingVector,
    SearchHit,
    StoredPoint,
    VectorStore,
    check_collection_name,
    pick_vector,
)
from knowledge.vectorstore.filters import (
    MAX_INDEXED_FIELDS,
    Condition,
    IndexKind,
    Match,
    MatchAny,
    Range,
    index_kind,
)

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient

T = TypeVar("T")
log = logging.getLogger(__name__)
ID_PAGE = 1000  # ids per retrieve or scroll request


class QdrantServerStore(VectorStore):
    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        breaker: Breaker | None = None,
    ) -> None:
        self.url = url
        self._shown_url = safe_url(url) if url != ":memory:" else url
        self._api_key = api_key
        self._timeout = timeout
        self.breaker = breaker or Breaker("qdrant")
        self._client: AsyncQdrantClient | None = None
        # Vectors of each collection seen so far; every ensure_collection checks its spec
        # against them (a cached name alone would accept a different size).
        self._vectors: dict[str, list[ExistingVector]] = {}
        self._indexed: dict[str, set[str]] = {}
        self._lock = asyncio.Lock()

    def _get_client(self) -> AsyncQdrantClient:
        if self._client is None:
            from qdrant_client import AsyncQdrantClient

            if self.url == ":memory:":
                self._client = AsyncQdrantClient(location=":memory:")
            else:
                self._client = AsyncQdrantClient(
                    url=self.url, api_key=self._api_key, timeout=int(self._timeout)
                )
        return self._client

    async def _translated(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """One client call, its failures told apart: the server refused (DependencyRejected,
        the caller's to fix) or is unwell (DependencyFailure, what a breaker counts)."""
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        try:
            return await fn(*args, **kwargs)
        except UnexpectedResponse as exc:
            detail = exc.content.decode(errors="replace")[:300]
            if exc.status_code in (401, 403):
                raise DependencyRejected(
                    f"The Qdrant server at {self._shown_url} refused the request "
                    f"(HTTP {exc.status_code}); check SHIELD_QDRANT_API_KEY."
                ) from exc
            if exc.status_code is not None and exc.status_code < 500:
                raise DependencyRejected(
                    f"The Qdrant server at {self._shown_url} refused the request "
                    f"(HTTP {exc.status_code}): {detail}"
                ) from exc
            raise DependencyFailure(
                f"The Qdrant server at {self._shown_url} failed (HTTP {exc.status_code}): {detail}"
            ) from exc
        except (ResponseHandlingException, OSError, TimeoutError) as exc:
            raise DependencyFailure(
                f"The Qdrant server at {self._shown_url} is not reachable "
                f"({type(exc).__name__}). Check SHIELD_QDRANT_URL."
            ) from exc

    async def _call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        return await self.breaker.call(self._translated, fn, *args, **kwargs)

    async def ping(self, name: str) -> None:
        """Outside the breaker: a probe must see the server come back while the breaker is
        still open, and its failures are not calls the breaker should count."""
        check_collection_name(name)
        await self._translated(self._get_client().collection_exists, name)

    async def collection_exists(self, name: str) -> bool:
        check_collection_name(name)
        return await self._call(self._get_client().collection_exists, name)

    async def ensure_collection(self, name: str, spec: CollectionSpec) -> str:
        from qdrant_client import models

        check_collection_name(name)
        async with self._lock:
            existing = self._vectors.get(name)
            if existing is None:
                client = self._get_client()
                if await self._call(client.collection_exists, name):
                    info = await self._call(client.get_collection, name)
                    vectors = info.config.params.vectors
                    if isinstance(vectors, models.VectorParams):
                        existing = [ExistingVector("", vectors.size, vectors.distance.value)]
                    else:
                        existing = [
                            ExistingVector(n, p.size, p.distance.value)
                            for n, p in (vectors or {}).items()
                        ]
                    self._indexed[name] = set((info.payload_schema or {}).keys())
                else:
                    await self._call(
                        client.create_collection,
                        name,
                        vectors_config={
                            spec.vector_name: models.VectorParams(
                                size=spec.size, distance=models.Distance.COSINE
                            )
                        },
                    )
                    existing = [
                        ExistingVector(spec.vector_name, spec.size, models.Distance.COSINE.value)
                    ]
                    self._indexed[name] = set()
                    await self._index(name, "source", "keyword")
                self._vectors[name] = existing
            return pick_vector(name, spec, existing)

    async def _index(self, name: str, field: str, kind: IndexKind) -> None:
        from qdrant_client import models

        key = f"metadata.{field}"
        indexed = self._indexed.setdefault(name, set())
        if key in indexed or len(indexed) >= MAX_INDEXED_FIELDS:
            return
        schema = {
            "keyword": models.PayloadSchemaType.KEYWORD,
            "integer": models.PayloadSchemaType.INTEGER,
            "float": models.PayloadSchemaType.FLOAT,
            "bool": models.PayloadSchemaType.BOOL,
        }[kind]
        try:
            await self._call(
                self._get_client().create_payload_index, name, key, field_schema=schema
            )
        except DependencyRejected as exc:
            # An index only speeds filters up. A refusal (say a read-only key) will not
            # change: stop asking, rather than pay a failed request on every search.
            log.warning("not indexing %s in %s: %s", key, name, exc)
        except KnowledgeError as exc:  # unavailable: a later filter tries again
            log.warning("could not index %s in %s yet: %s", key, name, exc)
            return
        indexed.add(key)

    async def upsert(self, name: str, vector_name: str, points: Sequence[StoredPoint]) -> None:
        from qdrant_client import models

        if not points:
            return
        structs = [
            models.PointStruct(
                id=p.id,
                vector={vector_name: p.vector} if vector_name else p.vector,
                payload=p.payload,
            )
            for p in points
        ]
        await self._call(self._get_client().upsert, name, points=structs, wait=True)

    async def _filter(self, name: str, conditions: Sequence[Condition]) -> Any:
        from qdrant_client import models

        must: list[models.Condition] = []
        for cond in conditions:
            key = f"metadata.{cond.field}"
            await self._index(name, cond.field, index_kind(cond))
            if isinstance(cond, Match):
                must.append(
                    models.FieldCondition(key=key, match=models.MatchValue(value=cond.value))
                )
            elif isinstance(cond, MatchAny):
                must.append(
                    models.FieldCondition(key=key, match=models.MatchAny(any=cond.as_list()))
                )
            elif isinstance(cond, Range):
                rng = models.Range(gt=cond.gt, gte=cond.gte, lt=cond.lt, lte=cond.lte)
                must.append(models.FieldCondition(key=key, range=rng))
        return models.Filter(must=must) if must else None

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
        response = await self._call(
            self._get_client().query_points,
            name,
            query=vector,
            using=vector_name or None,
            limit=limit,
            offset=offset or None,
            query_filter=await self._filter(name, conditions),
            score_threshold=score_threshold,
            with_payload=True,
        )
        return [
            SearchHit(str(p.id), float(p.score), dict(p.payload or {})) for p in response.points
        ]

    async def count(self, name: str) -> int:
        result = await self._call(self._get_client().count, name, exact=True)
        return int(result.count)

    async def _exists(self, name: str) -> bool:
        return name in self._vectors or await self.collection_exists(name)

    async def stored_metadata(self, name: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids or not await self._exists(name):
            return {}
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), ID_PAGE):
            records = await self._call(
                self._get_client().retrieve,
                name,
                ids=list(ids[start : start + ID_PAGE]),
                with_payload=["metadata"],
                with_vectors=False,
            )
            found.update(
                (str(r.id), dict((r.payload or {}).get("metadata") or {})) for r in records
            )
        return found

    async def source_ids(self, name: str, source: str) -> set[str]:
        from qdrant_client import models

        if not await self._exists(name):
            return set()
        by_source = models.Filter(
            must=[
                models.FieldCondition(key="metadata.source", match=models.MatchValue(value=source))
            ]
        )
        found: set[str] = set()
        offset: Any = None
        while True:
            records, offset = await self._call(
                self._get_client().scroll,
                name,
                scroll_filter=by_source,
                limit=ID_PAGE,
                offset=offset,
                with_payload=False,
                with_vectors=False,
            )
            found.update(str(r.id) for r in records)
            if offset is None or not records:
                return found

    async def update_metadata(self, name: str, metadata: Mapping[str, dict[str, Any]]) -> None:
        from qdrant_client import models

        if not metadata or not await self._exists(name):
            return
        present = set(await self.stored_metadata(name, list(metadata)))
        operations = [
            models.SetPayloadOperation(
                set_payload=models.SetPayload(payload={"metadata": values}, points=[pid])
            )
            for pid, values in metadata.items()
            if pid in present
        ]
        if operations:
            await self._call(
                self._get_client().batch_update_points, name, update_operations=operations
            )

    async def delete(self, name: str, ids: Sequence[str]) -> None:
        from qdrant_client import models

        if not ids or not await self._exists(name):
            return
        await self._call(
            self._get_client().delete,
            name,
            points_selector=models.PointIdsList(points=list(ids)),
            wait=True,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
