"""The embedded store builds its HNSW index in the background, never on a request."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from knowledge.vectorstore.base import CollectionSpec, StoredPoint
from knowledge.vectorstore.edge import EdgeVectorStore

DIM = 32
SPEC = CollectionSpec("v", DIM)


def unit(rng: random.Random) -> list[float]:
    v = [rng.gauss(0, 1) for _ in range(DIM)]
    norm = sum(x * x for x in v) ** 0.5
    return [x / norm for x in v]


def indexed_vectors(store: EdgeVectorStore, name: str) -> int:
    return int(store.shards._collections[name].shard.info().indexed_vectors_count)


async def test_the_index_is_built_in_the_background_after_enough_points(data_dir: Path) -> None:
    # A tiny indexing threshold so a few hundred points are enough for an HNSW build.
    store = EdgeVectorStore(data_dir, optimize_after=200, indexing_threshold_kb=1)
    rng = random.Random(7)
    points = [
        StoredPoint(f"00000000-0000-0000-0000-{i:012d}", unit(rng), {"metadata": {"n": i}})
        for i in range(600)
    ]
    try:
        await store.ensure_collection("c", SPEC)
        await store.upsert("c", "v", points[:150])
        assert not store.optimizing()  # below optimize_after: nothing scheduled
        assert indexed_vectors(store, "c") == 0
        query = points[0].vector
        before = await store.search("c", "v", query, limit=5)

        await store.upsert("c", "v", points[150:])
        # The upsert returned without building anything; the build finishes on its own.
        deadline = time.monotonic() + 60
        while store.optimizing() or indexed_vectors(store, "c") < len(points):
            assert time.monotonic() < deadline, "the background index build never finished"
            # Searches keep answering while the index is built.
            assert (await store.search("c", "v", query, limit=1))[0].id == points[0].id
            await asyncio.sleep(0.05)
        after = await store.search("c", "v", query, limit=5)
        assert after[0].id == before[0].id == points[0].id
        assert await store.count("c") == len(points)
    finally:
        await store.close()


async def test_points_written_before_a_restart_count_towards_the_next_build(
    data_dir: Path,
) -> None:
    rng = random.Random(8)
    points = [
        StoredPoint(f"00000000-0000-0000-0000-{i:012d}", unit(rng), {"metadata": {"n": i}})
        for i in range(300)
    ]
    first = EdgeVectorStore(data_dir, optimize_after=200, indexing_threshold_kb=1)
    await first.ensure_collection("c", SPEC)
    await first.upsert("c", "v", points[:150])  # below the threshold: no build yet
    await first.close()

    second = EdgeVectorStore(data_dir, optimize_after=200, indexing_threshold_kb=1)
    try:
        await second.ensure_collection("c", SPEC)
        await second.upsert("c", "v", points[150:210])  # 150 + 60 crosses 200
        deadline = time.monotonic() + 60
        while second.optimizing() or indexed_vectors(second, "c") < 210:
            assert time.monotonic() < deadline, "no index build after the restart"
            await asyncio.sleep(0.05)
    finally:
        await second.close()
