"""Shared set-up of the vector store tests: both backends, a catalogue with known geometry.

``embedded`` is qdrant-edge-py on a temporary directory; ``qdrant`` is ``QdrantServerStore``
on qdrant-client's ``":memory:"`` location (the same client API as a Qdrant server, which
cannot run here). Vectors are small hand-made unit vectors in a plane, point ``i`` at a known
angle from the query, so the expected order of every search follows from the geometry.
"""

from __future__ import annotations

import math
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from knowledge.breakers import Breaker
from knowledge.vectorstore.base import CollectionSpec, SearchHit, StoredPoint, VectorStore
from knowledge.vectorstore.edge import EdgeVectorStore
from knowledge.vectorstore.qdrant_server import QdrantServerStore

DIM = 4
SPEC = CollectionSpec(vector_name="test-vec", size=DIM)


def at(degrees: float) -> list[float]:
    """A 4-d unit vector in the first plane, ``degrees`` away from ``at(0)``."""
    rad = math.radians(degrees)
    return [math.cos(rad), math.sin(rad), 0.0, 0.0]


def pid(i: int) -> str:
    return str(uuid.UUID(int=i + 1))


def nums(hits: list[SearchHit]) -> list[int]:
    """Point numbers of the hits, after checking each id matches its payload."""
    out = []
    for hit in hits:
        num = int(hit.payload["metadata"]["page"])
        assert hit.id == pid(num)
        out.append(num)
    return out


# --- backends ---------------------------------------------------------------------------


def make_store(backend: str, root: Path) -> VectorStore:
    if backend == "embedded":
        return EdgeVectorStore(root)
    return QdrantServerStore(":memory:", breaker=Breaker(f"test-qdrant-{uuid.uuid4().hex[:10]}"))


@pytest.fixture
def store_root(tmp_path: Path) -> Iterator[Path]:
    """A data dir for the embedded engine, on tmpfs when the machine has one.

    The engine fsyncs on every create and flush, which on this machine's disk made this file
    take ~20 s; nothing tested here depends on the medium. Persistence across close and
    reopen is tested on disk (``data_dir``).
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        with tempfile.TemporaryDirectory(dir=shm, prefix="shield-test-") as tmp:
            root = Path(tmp) / "data"
            root.mkdir()
            yield root
    else:
        root = tmp_path / "data"
        root.mkdir()
        yield root


@pytest.fixture(params=["embedded", "qdrant"])
async def store(request: pytest.FixtureRequest, store_root: Path) -> AsyncIterator[VectorStore]:
    vector_store = make_store(request.param, store_root)
    yield vector_store
    await vector_store.close()


async def create_foreign(store: VectorStore, name: str, vectors: dict[str, int] | int) -> None:
    """Create a collection the way another tool would: with the engine's own API.

    ``vectors`` is {name: size} for named vectors or a bare size for one unnamed vector.
    """
    if isinstance(store, EdgeVectorStore):
        from qdrant_edge import Distance, EdgeConfig, EdgeShard, EdgeVectorParams

        def params(size: int) -> Any:
            return EdgeVectorParams(size=size, distance=Distance.Cosine)

        config = EdgeConfig(
            vectors=params(vectors)
            if isinstance(vectors, int)
            else {n: params(s) for n, s in vectors.items()}
        )
        path = store.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        EdgeShard.create(str(path), config).close()
    else:
        from qdrant_client import models

        assert isinstance(store, QdrantServerStore)

        def vp(size: int) -> models.VectorParams:
            return models.VectorParams(size=size, distance=models.Distance.COSINE)

        # ":memory:" has no second client to create it from; the store's own client is the
        # same engine another tool would talk to.
        await store._get_client().create_collection(
            name,
            vectors_config=vp(vectors)
            if isinstance(vectors, int)
            else {n: vp(s) for n, s in vectors.items()},
        )


# --- a small catalogue with known geometry ------------------------------------------------

N = 10


def catalogue_meta(i: int) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "source": "a.md" if i % 2 == 0 else "b.md",
        "page": i,
        "rank": i * 0.25,
        "tag": ["x", "y", "z"][i % 3],
        "info": {"lang": "de" if i in (2, 3, 8) else "en", "reviewed": i >= 6},
    }
    if i != 9:  # point 9 has no "draft" at all: neither True nor False matches it
        meta["draft"] = i in (1, 4, 7)
    return meta


CATALOGUE = [
    StoredPoint(pid(i), at(10 * i), {"document": f"text {i}", "metadata": catalogue_meta(i)})
    for i in range(N)
]


@pytest.fixture
async def filled(store: VectorStore) -> VectorStore:
    assert await store.ensure_collection("docs", SPEC) == SPEC.vector_name
    await store.upsert("docs", SPEC.vector_name, CATALOGUE)
    return store


async def search(store: VectorStore, query: list[float], **kwargs: Any) -> list[SearchHit]:
    kwargs.setdefault("limit", 100)
    return await store.search("docs", SPEC.vector_name, query, **kwargs)


# --- many points, few of them flagged: the embedded store's boolean window --------------------

MANY = 300
FLAGGED = (250, 270, 280, 299)  # the farthest from at(0); the nearest 250 are all unflagged


def many_points() -> list[StoredPoint]:
    points = []
    for i in range(MANY):
        meta: dict[str, Any] = {"page": i, "source": "far.md" if i >= 260 else "near.md"}
        if i % 50 != 7:  # a few points without the flag at all
            meta["flag"] = i in FLAGGED
        points.append(StoredPoint(pid(i), at(0.5 * i), {"metadata": meta}))
    return points


@pytest.fixture
async def crowded(store: VectorStore) -> VectorStore:
    await store.ensure_collection("docs", SPEC)
    points = many_points()
    for start in range(0, MANY, 100):
        await store.upsert("docs", SPEC.vector_name, points[start : start + 100])
    assert await store.count("docs") == MANY
    return store
