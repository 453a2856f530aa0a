"""Both vector store backends: stored metadata is read and replaced in place."""

from __future__ import annotations

from knowledge.vectorstore.base import StoredPoint, VectorStore
from tests.knowledge.vector_fixtures import SPEC, at, pid


async def test_metadata_is_read_and_replaced_without_touching_text_or_vector(
    store: VectorStore,
) -> None:
    assert await store.stored_metadata("missing", [pid(0)]) == {}
    await store.update_metadata("missing", {pid(0): {"x": 1}})  # nothing to do, no error
    await store.ensure_collection("c", SPEC)
    points = [
        StoredPoint(pid(i), at(i * 10), {"document": f"t{i}", "metadata": {"team": "ops", "i": i}})
        for i in range(3)
    ]
    await store.upsert("c", SPEC.vector_name, points)
    assert await store.stored_metadata("c", [pid(1), pid(99)]) == {pid(1): {"team": "ops", "i": 1}}

    await store.update_metadata("c", {pid(1): {"team": "dev"}, pid(99): {"team": "dev"}})
    assert await store.stored_metadata("c", [pid(0), pid(1)]) == {
        pid(0): {"team": "ops", "i": 0},
        pid(1): {"team": "dev"},  # replaced whole, not merged
    }
    assert await store.count("c") == 3  # no point was made for the unknown id
    hits = await store.search("c", SPEC.vector_name, at(10), limit=1)
    assert hits[0].id == pid(1) and hits[0].payload["document"] == "t1"
