"""Both vector store backends: which ids are stored, ids of a source, deleting by id."""

from __future__ import annotations

from knowledge.vectorstore.base import StoredPoint, VectorStore
from tests.knowledge.vector_fixtures import SPEC, at, pid


async def _fill(store: VectorStore) -> None:
    await store.ensure_collection("c", SPEC)
    points = [
        StoredPoint(pid(i), at(i * 10), {"metadata": {"source": "a" if i < 3 else "b"}})
        for i in range(5)
    ]
    await store.upsert("c", SPEC.vector_name, points)


async def test_stored_metadata_reports_only_stored_points(store: VectorStore) -> None:
    assert await store.stored_metadata("missing", [pid(0)]) == {}
    await _fill(store)
    found = await store.stored_metadata("c", [pid(0), pid(4), pid(99)])
    assert found == {pid(0): {"source": "a"}, pid(4): {"source": "b"}}
    assert await store.stored_metadata("c", []) == {}


async def test_source_ids_and_delete(store: VectorStore) -> None:
    assert await store.source_ids("missing", "a") == set()
    await _fill(store)
    assert await store.source_ids("c", "a") == {pid(0), pid(1), pid(2)}
    await store.delete("c", [pid(1), pid(99)])
    assert await store.source_ids("c", "a") == {pid(0), pid(2)}
    assert await store.count("c") == 4
    await store.delete("missing", [pid(1)])  # nothing to do, no error
