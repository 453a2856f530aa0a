"""Both vector store backends on the same contract, with real engines.

``embedded`` is qdrant-edge-py on a temporary directory; ``qdrant`` is ``QdrantServerStore``
on qdrant-client's ``":memory:"`` location (the same client API as a Qdrant server, which
cannot run here). Vectors are small hand-made unit vectors in a plane, point ``i`` at a known
angle from the query, so the expected order of every search follows from the geometry.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from knowledge.errors import CollectionMismatch, InvalidInput
from knowledge.vectorstore.base import CollectionSpec, StoredPoint, VectorStore
from knowledge.vectorstore.edge import EdgeVectorStore
from knowledge.vectorstore.filters import Range

# qdrant-client's local mode warns that payload indexes do nothing there; the store still
# creates them because a real server uses them.
from tests.knowledge.vector_fixtures import (
    CATALOGUE,
    DIM,
    SPEC,
    N,
    at,
    create_foreign,
    nums,
    pid,
    search,
)

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")


# --- collections ----------------------------------------------------------------------------


async def test_ensure_collection_creates_it_and_returns_the_vector_name(
    store: VectorStore,
) -> None:
    assert not await store.collection_exists("notes")
    assert await store.ensure_collection("notes", SPEC) == "test-vec"
    assert await store.collection_exists("notes")
    assert await store.count("notes") == 0
    assert await store.ensure_collection("notes", SPEC) == "test-vec"
    assert not await store.collection_exists("other")


async def test_a_collection_of_another_size_is_refused_naming_both_sizes(
    store: VectorStore,
) -> None:
    await store.ensure_collection("notes", SPEC)
    with pytest.raises(CollectionMismatch) as caught:
        await store.ensure_collection("notes", CollectionSpec("test-vec", 8))
    assert "4-d" in str(caught.value)
    assert "8-d" in str(caught.value)
    assert "'notes'" in str(caught.value)


async def test_a_foreign_collection_of_another_size_is_refused(store: VectorStore) -> None:
    await create_foreign(store, "theirs", {"fast-all-minilm-l6-v2": 384})
    with pytest.raises(CollectionMismatch) as caught:
        await store.ensure_collection("theirs", SPEC)
    assert "384-d" in str(caught.value)
    assert f"{DIM}-d" in str(caught.value)
    assert "fast-all-minilm-l6-v2" in str(caught.value)


@pytest.mark.parametrize(
    ("vectors", "expected"),
    [
        pytest.param({"dense": DIM}, "dense", id="other-name"),
        pytest.param(DIM, "", id="unnamed"),
        pytest.param({"big": 8, "small": DIM}, "small", id="two-vectors-one-fits"),
        pytest.param({"other": DIM, SPEC.vector_name: DIM}, SPEC.vector_name, id="ours-among-two"),
    ],
)
async def test_a_foreign_collection_with_a_fitting_vector_is_used(
    store: VectorStore, vectors: dict[str, int] | int, expected: str
) -> None:
    await create_foreign(store, "theirs", vectors)
    vector_name = await store.ensure_collection("theirs", SPEC)
    assert vector_name == expected
    assert await store.ensure_collection("theirs", SPEC) == expected

    points = [StoredPoint(pid(i), at(30 * i), {"metadata": {"page": i}}) for i in range(3)]
    await store.upsert("theirs", vector_name, points)
    assert await store.count("theirs") == 3
    hits = await store.search("theirs", vector_name, at(55), limit=3)
    assert nums(hits) == [2, 1, 0]


@pytest.mark.parametrize("name", ["fast-bge-small-en", "ollama-nomic-embed-text", "local-x"])
async def test_a_collection_named_after_another_model_is_refused_even_at_our_size(
    store: VectorStore, name: str
) -> None:
    """Same size is not same space: another model's vectors must not be mixed with ours."""
    await create_foreign(store, "theirs", {name: DIM})
    with pytest.raises(CollectionMismatch, match="another embedding model") as caught:
        await store.ensure_collection("theirs", SPEC)
    assert name in str(caught.value) and SPEC.vector_name in str(caught.value)
    assert await store.count("theirs") == 0


async def test_a_foreign_collection_with_two_vectors_of_our_size_is_ambiguous(
    store: VectorStore,
) -> None:
    await create_foreign(store, "theirs", {"left": DIM, "right": DIM})
    with pytest.raises(CollectionMismatch, match="several vectors"):
        await store.ensure_collection("theirs", SPEC)


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "-dash", "x" * 64, "a b"])
async def test_unsafe_collection_names_are_refused(
    store: VectorStore, name: str, store_root: Path
) -> None:
    with pytest.raises(InvalidInput, match="not allowed"):
        await store.ensure_collection(name, SPEC)
    with pytest.raises(InvalidInput, match="not allowed"):
        await store.collection_exists(name)
    assert sorted(p.name for p in store_root.parent.iterdir()) == ["data"]  # nothing escaped


# --- writing and searching --------------------------------------------------------------------


async def test_search_returns_nearest_first_with_payloads_and_scores(filled: VectorStore) -> None:
    query_angle = 23.0
    hits = await search(filled, at(query_angle))
    expected = sorted(range(N), key=lambda i: abs(10 * i - query_angle))
    assert nums(hits) == expected
    for hit in hits:
        i = nums([hit])[0]
        assert hit.payload == CATALOGUE[i].payload
        assert hit.score == pytest.approx(math.cos(math.radians(10 * i - query_angle)), abs=1e-5)
    assert await filled.count("docs") == N


async def test_limit_caps_the_hits(filled: VectorStore) -> None:
    assert nums(await search(filled, at(0), limit=3)) == [0, 1, 2]


async def test_offset_pages_are_disjoint_and_consecutive(filled: VectorStore) -> None:
    pages = [nums(await search(filled, at(0), limit=3, offset=off)) for off in range(0, 12, 3)]
    assert pages == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


async def test_score_threshold_drops_far_points(filled: VectorStore) -> None:
    threshold = math.cos(math.radians(35))  # between points 3 (30 degrees) and 4 (40 degrees)
    hits = await search(filled, at(0), score_threshold=threshold)
    assert nums(hits) == [0, 1, 2, 3]
    assert all(hit.score >= threshold for hit in hits)
    assert await search(filled, at(180), score_threshold=0.1) == []  # all are 90+ degrees away


async def test_upserting_the_same_id_again_keeps_one_point(store: VectorStore) -> None:
    await store.ensure_collection("docs", SPEC)
    await store.upsert("docs", SPEC.vector_name, [StoredPoint(pid(0), at(90), {"v": 1})])
    await store.upsert("docs", SPEC.vector_name, [StoredPoint(pid(0), at(0), {"v": 2})])
    assert await store.count("docs") == 1
    hits = await search(store, at(0))
    assert [(h.id, h.payload) for h in hits] == [(pid(0), {"v": 2})]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)  # the new vector replaced the old


async def test_an_empty_upsert_writes_nothing(store: VectorStore) -> None:
    await store.ensure_collection("docs", SPEC)
    await store.upsert("docs", SPEC.vector_name, [])
    assert await store.count("docs") == 0


# --- embedded only ----------------------------------------------------------------------------


async def test_embedded_data_persists_across_close_and_reopen(data_dir: Path) -> None:
    first = EdgeVectorStore(data_dir)
    await first.ensure_collection("docs", SPEC)
    await first.upsert("docs", SPEC.vector_name, CATALOGUE)
    await first.close()

    second = EdgeVectorStore(data_dir)
    try:
        assert await second.collection_exists("docs")
        assert await second.count("docs") == N
        assert await second.ensure_collection("docs", SPEC) == SPEC.vector_name
        hits = await second.search(
            "docs", SPEC.vector_name, at(0), limit=3, conditions=[Range("page", gte=4)]
        )
        assert nums(hits) == [4, 5, 6]
        assert hits[0].payload == CATALOGUE[4].payload
        with pytest.raises(CollectionMismatch, match="8-d"):
            await second.ensure_collection("docs", CollectionSpec("test-vec", 8))
        await second.upsert("docs", SPEC.vector_name, [StoredPoint(pid(99), at(1), {})])
        assert await second.count("docs") == N + 1
    finally:
        await second.close()


async def test_embedded_collections_live_under_the_data_dir(data_dir: Path) -> None:
    store = EdgeVectorStore(data_dir)
    try:
        await store.ensure_collection("team-notes_2", SPEC)
        assert (data_dir / "collections" / "team-notes_2" / "edge_config.json").is_file()
    finally:
        await store.close()


@pytest.mark.parametrize("name", ["../x", "a/b", "", "..", "/abs"])
async def test_embedded_unsafe_names_are_refused_on_every_operation(
    store_root: Path, name: str
) -> None:
    store = EdgeVectorStore(store_root)
    try:
        with pytest.raises(InvalidInput):
            await store.ensure_collection(name, SPEC)
        with pytest.raises(InvalidInput):
            await store.upsert(name, SPEC.vector_name, [StoredPoint(pid(0), at(0), {})])
        with pytest.raises(InvalidInput):
            await store.search(name, SPEC.vector_name, at(0), limit=1)
        with pytest.raises(InvalidInput):
            await store.count(name)
    finally:
        await store.close()
    assert sorted(p.name for p in store_root.parent.iterdir()) == ["data"]
    assert not (store_root / "x").exists()
