"""Both vector store backends on the same contract, with real engines.

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
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from knowledge.breakers import Breaker
from knowledge.errors import CollectionMismatch, InvalidInput
from knowledge.vectorstore.base import CollectionSpec, SearchHit, StoredPoint, VectorStore
from knowledge.vectorstore.edge import EdgeVectorStore
from knowledge.vectorstore.filters import Match, Range, parse_filter
from knowledge.vectorstore.qdrant_server import QdrantServerStore

# qdrant-client's local mode warns that payload indexes do nothing there; the store still
# creates them because a real server uses them.
pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")

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
        pytest.param({"fast-all-minilm-l6-v2": DIM}, "fast-all-minilm-l6-v2", id="other-name"),
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


# --- filters ----------------------------------------------------------------------------------


def field(meta: dict[str, Any], dotted: str) -> Any:
    value: Any = meta
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def matches(raw: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """The filter language's meaning, written plainly, to compute expected hits."""

    def one(value: Any, spec: Any) -> bool:
        if isinstance(spec, list):
            return value in spec and type(value) is type(spec[0])
        if isinstance(spec, dict):
            if not isinstance(value, int | float) or isinstance(value, bool):
                return False
            ops = {
                "gt": value > spec.get("gt", -math.inf),
                "gte": value >= spec.get("gte", -math.inf),
                "lt": value < spec.get("lt", math.inf),
                "lte": value <= spec.get("lte", math.inf),
            }
            return all(ops.values())
        return type(value) is type(spec) and value == spec

    return lambda meta: all(one(field(meta, f), s) for f, s in raw.items())


FILTERS = [
    pytest.param({"source": "b.md"}, id="str"),
    pytest.param({"page": 3}, id="int"),
    pytest.param({"draft": True}, id="bool-true"),
    pytest.param({"draft": False}, id="bool-false"),
    pytest.param({"info.lang": "de"}, id="nested-str"),
    pytest.param({"info.reviewed": True}, id="nested-bool"),
    pytest.param({"tag": ["x", "z"]}, id="any-str"),
    pytest.param({"page": [2, 5, 9, 42]}, id="any-int"),
    pytest.param({"page": {"gte": 2, "lte": 5}}, id="int-gte-lte"),
    pytest.param({"page": {"gt": 2, "lt": 5}}, id="int-gt-lt"),
    pytest.param({"page": {"gte": 7}}, id="int-gte-only"),
    pytest.param({"rank": {"gte": 0.5, "lt": 1.5}}, id="float-gte-lt"),
    pytest.param({"rank": {"gt": 0.5, "lte": 1.5}}, id="float-gt-lte"),
    pytest.param({"rank": {"lt": 0.6}}, id="float-lt-only"),
    pytest.param({"source": "a.md", "page": {"gt": 3}}, id="and-str-range"),
    pytest.param({"tag": ["x", "y"], "source": "b.md"}, id="and-any-str"),
    pytest.param({"draft": True, "source": "b.md"}, id="and-bool-str"),
    pytest.param({"draft": False, "page": {"lte": 5}}, id="and-bool-range"),
    pytest.param({"source": "nowhere.md"}, id="no-match"),
    pytest.param({"page": "3"}, id="str-does-not-match-int"),
]


@pytest.mark.parametrize("raw", FILTERS)
async def test_filters_select_exactly_the_matching_points(
    filled: VectorStore, raw: dict[str, Any]
) -> None:
    keep = matches(raw)
    expected = [i for i in range(N) if keep(catalogue_meta(i))]
    hits = await search(filled, at(0), conditions=parse_filter(raw))
    assert nums(hits) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"source": "a.md"}, id="str"),
        pytest.param({"draft": False}, id="bool"),
        pytest.param({"page": {"gte": 1}}, id="range"),
    ],
)
async def test_filtered_pages_are_disjoint_and_consecutive(
    filled: VectorStore, raw: dict[str, Any]
) -> None:
    keep = matches(raw)
    expected = [i for i in range(N) if keep(catalogue_meta(i))]
    conditions = parse_filter(raw)
    pages = [
        nums(await search(filled, at(0), limit=2, offset=off, conditions=conditions))
        for off in range(0, len(expected) + 2, 2)
    ]
    assert [i for page in pages for i in page] == expected
    assert all(len(page) == 2 for page in pages[: len(expected) // 2])
    assert pages[-1] == []


async def test_filters_combine_with_score_threshold(filled: VectorStore) -> None:
    threshold = math.cos(math.radians(55))  # points 0..5
    hits = await search(filled, at(0), conditions=[Match("draft", True)], score_threshold=threshold)
    assert nums(hits) == [1, 4]


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


async def test_a_bool_filter_finds_rare_far_points_and_pages_through_them(
    crowded: VectorStore,
) -> None:
    flag = [Match("flag", True)]
    assert nums(await search(crowded, at(0), limit=2, conditions=flag)) == [250, 270]
    assert nums(await search(crowded, at(0), limit=2, offset=2, conditions=flag)) == [280, 299]
    assert nums(await search(crowded, at(0), limit=2, offset=4, conditions=flag)) == []
    assert nums(await search(crowded, at(0), limit=10, conditions=flag)) == list(FLAGGED)


async def test_a_bool_filter_with_an_engine_filter_over_many_points(
    crowded: VectorStore,
) -> None:
    conditions = parse_filter({"flag": True, "source": "far.md"})
    assert nums(await search(crowded, at(0), limit=10, conditions=conditions)) == [270, 280, 299]
    conditions = parse_filter({"flag": True, "page": {"lt": 260}})
    assert nums(await search(crowded, at(0), limit=10, conditions=conditions)) == [250]


async def test_a_false_bool_filter_pages_over_many_points(crowded: VectorStore) -> None:
    unflagged = [p for p in range(MANY) if p not in FLAGGED and p % 50 != 7]
    conditions = [Match("flag", False)]
    seen: list[int] = []
    for offset in range(0, MANY, 40):
        page = nums(await search(crowded, at(0), limit=40, offset=offset, conditions=conditions))
        assert page == unflagged[offset : offset + 40]
        seen.extend(page)
    assert seen == unflagged


async def test_a_bool_filter_respects_the_score_threshold_over_many_points(
    crowded: VectorStore,
) -> None:
    threshold = math.cos(math.radians(137.5))  # keeps points up to 275 (137.5 degrees)
    hits = await search(crowded, at(0), conditions=[Match("flag", True)], score_threshold=threshold)
    assert nums(hits) == [250, 270]


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
