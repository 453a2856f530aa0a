"""The embedded engine's failures stay ordinary errors, and the bool window never lies."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.errors import InvalidInput
from knowledge.vectorstore.base import CollectionSpec, StoredPoint
from knowledge.vectorstore.edge import MAX_BOOL_WINDOW, EdgeVectorStore
from knowledge.vectorstore.filters import MAX_INDEXED_FIELDS, Match, Range

SPEC = CollectionSpec("v", 2)


def pid(i: int) -> str:
    return f"00000000-0000-0000-0000-{i:012d}"


async def test_an_engine_panic_becomes_an_exception_not_a_dead_transport(
    data_dir: Path,
) -> None:
    """qdrant-edge panics on a NaN range bound over a float index (pyo3 raises that as a
    BaseException). parse_filter refuses NaN; this checks the second line of defence."""
    store = EdgeVectorStore(data_dir)
    try:
        await store.ensure_collection("c", SPEC)
        await store.upsert("c", "v", [StoredPoint(pid(1), [1.0, 0.0], {"metadata": {"n": 1.5}})])
        await store.search("c", "v", [1.0, 0.0], limit=1, conditions=[Range("n", gte=0.0)])
        with pytest.raises(Exception, match="embedded Qdrant engine failed") as caught:
            await store.search(
                "c", "v", [1.0, 0.0], limit=1, conditions=[Range("n", gte=float("nan"))]
            )
        assert isinstance(caught.value, RuntimeError)
        # The store still answers afterwards.
        hits = await store.search("c", "v", [1.0, 0.0], limit=1)
        assert [h.id for h in hits] == [pid(1)]
    finally:
        await store.close()


async def test_a_bool_filter_that_outgrows_its_window_says_so(data_dir: Path) -> None:
    store = EdgeVectorStore(data_dir)
    total = MAX_BOOL_WINDOW + 50
    try:
        await store.ensure_collection("c", SPEC)
        points = [
            StoredPoint(
                pid(i),
                [1.0, i / total],  # nearer to the query the smaller i is
                {"metadata": {"flag": i >= total - 3}},  # only the 3 farthest are flagged
            )
            for i in range(total)
        ]
        for start in range(0, total, 2000):
            await store.upsert("c", "v", points[start : start + 2000])
        with pytest.raises(InvalidInput, match="add another filter condition"):
            await store.search("c", "v", [1.0, 0.0], limit=3, conditions=[Match("flag", True)])
        # Unflagged points are plentiful near the query: the window is enough.
        hits = await store.search("c", "v", [1.0, 0.0], limit=3, conditions=[Match("flag", False)])
        assert len(hits) == 3
        assert all(h.payload["metadata"]["flag"] is False for h in hits)
    finally:
        await store.close()


async def test_uppercase_collection_names_are_refused_by_the_embedded_store(
    data_dir: Path,
) -> None:
    store = EdgeVectorStore(data_dir)
    try:
        with pytest.raises(InvalidInput, match="lowercase; use 'notes'"):
            await store.ensure_collection("Notes", SPEC)
        assert not (data_dir / "collections" / "Notes").exists()
    finally:
        await store.close()


async def test_filters_on_many_fields_stay_correct_past_the_index_cap(data_dir: Path) -> None:
    fields = MAX_INDEXED_FIELDS + 8
    store = EdgeVectorStore(data_dir)
    try:
        await store.ensure_collection("c", SPEC)
        meta = {f"f{i}": i for i in range(fields)}
        await store.upsert("c", "v", [StoredPoint(pid(1), [1.0, 0.0], {"metadata": meta})])
        for i in range(fields):
            for value, expected in ((i, [pid(1)]), (i + 1, [])):
                hits = await store.search(
                    "c", "v", [1.0, 0.0], limit=1, conditions=[Match(f"f{i}", value)]
                )
                assert [h.id for h in hits] == expected
        indexes = store.shards._collections["c"].shard.info().payload_schema
        assert len(indexes) == MAX_INDEXED_FIELDS
    finally:
        await store.close()
