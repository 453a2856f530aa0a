"""The knowledge service on the real model and the embedded store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from knowledge.breakers import Breaker
from knowledge.embeddings.local import LocalEmbedder
from knowledge.embeddings.ollama import OllamaEmbedder
from knowledge.errors import DependencyUnavailable, InvalidInput
from knowledge.service import Document, KnowledgeService, Limits
from knowledge.vectorstore.edge import EdgeVectorStore


@pytest.fixture
async def service(local_embedder: LocalEmbedder, data_dir: Path) -> AsyncIterator[KnowledgeService]:
    svc = KnowledgeService(
        local_embedder,
        EdgeVectorStore(data_dir),
        default_collection="notes",
        limits=Limits(max_batch=4, max_text_chars=200, max_limit=10),
    )
    yield svc
    await svc.store.close()


async def test_storing_the_same_text_from_the_same_source_updates_one_point(
    service: KnowledgeService,
) -> None:
    doc = Document("Backups run nightly at 02:00.", {"source": "ops.md"})
    first = await service.store_documents([doc])
    second = await service.store_documents([Document(doc.text, {"source": "ops.md", "v": 2})])
    assert first.ids == second.ids
    assert await service.store.count("notes") == 1
    found = await service.find("when do backups run?")
    assert found.results[0].metadata == {"source": "ops.md", "v": 2}


async def test_the_same_text_from_another_source_is_another_point(
    service: KnowledgeService,
) -> None:
    a = await service.store_documents([Document("Same words.", {"source": "a"})])
    b = await service.store_documents([Document("Same words.", {"source": "b"})])
    assert a.ids != b.ids
    assert await service.store.count("notes") == 2


async def test_paging_walks_through_all_results_without_overlap(
    service: KnowledgeService,
) -> None:
    texts = [f"Note number {i} about the garden and its plants." for i in range(7)]
    for start in range(0, 7, 4):
        await service.store_documents([Document(t) for t in texts[start : start + 4]])
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = await service.find("garden plants", limit=3, offset=offset)
        seen.extend(h.text for h in page.results)
        offset = page.next_offset
    assert sorted(seen) == sorted(texts)


@pytest.mark.parametrize(
    ("kwargs", "hint"),
    [
        ({"query": "  "}, "query is empty"),
        ({"query": "x" * 5000}, "limit is 4000"),
        ({"query": "q", "limit": 0}, "between 1 and 10"),
        ({"query": "q", "limit": 11}, "between 1 and 10"),
        ({"query": "q", "offset": -1}, "offset must be"),
        ({"query": "q", "score_threshold": 2.0}, "between -1 and 1"),
        ({"query": "q", "score_threshold": float("nan")}, "between -1 and 1"),
        ({"query": "q", "collection": "../up"}, "not allowed"),
        ({"query": "q", "collection": "missing"}, "does not exist yet"),
        ({"query": "q", "filter": {"a": {"gte": "x"}}}, "must be finite numbers"),
    ],
)
async def test_bad_find_arguments_are_refused(
    service: KnowledgeService, kwargs: dict[str, object], hint: str
) -> None:
    with pytest.raises(InvalidInput, match=hint):
        await service.find(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("documents", "hint"),
    [
        ([], "documents is empty"),
        ([{"text": "a"}] * 5, "limit is 4"),
        ([{"text": ""}], r"documents\[0\].text is empty"),
        ([{"text": "ok"}, {"text": "x" * 201}], r"documents\[1\].text has 201 characters"),
        ([{"text": "ok", "metadata": ["not", "a", "dict"]}], "must be an object"),
        ([{"text": "ok", "metadata": {"blob": "x" * 20_000}}], "limit is 16384"),
        ([{"text": "ok", "metadata": {"n": float("inf")}}], "plain JSON"),
        (["just a string"], "must be an object"),
    ],
)
def test_bad_documents_are_refused_before_anything_is_written(
    service: KnowledgeService, documents: list[object], hint: str
) -> None:
    with pytest.raises(InvalidInput, match=hint):
        service.validate_documents(documents)  # type: ignore[arg-type]


async def test_a_failed_embedding_leaves_no_collection_behind(
    data_dir: Path, dead_port: int
) -> None:
    # Ollama cannot run here; a closed port is the real "Ollama is down" case.
    embedder = OllamaEmbedder(
        host=f"http://127.0.0.1:{dead_port}",
        model="nomic-embed-text",
        breaker=Breaker("test-service-down"),
    )
    store = EdgeVectorStore(data_dir)
    svc = KnowledgeService(embedder, store, default_collection="fresh")
    with pytest.raises(DependencyUnavailable, match="not reachable"):
        await svc.store_documents([Document("anything")])
    assert not await store.collection_exists("fresh")
    await svc.close()


async def test_next_offset_stops_at_the_largest_offset_served(
    local_embedder: LocalEmbedder, data_dir: Path
) -> None:
    svc = KnowledgeService(
        local_embedder,
        EdgeVectorStore(data_dir),
        default_collection="notes",
        limits=Limits(max_offset=2),
    )
    try:
        await svc.store_documents([Document(f"passage {i}") for i in range(6)])
        first = await svc.find("passage", limit=2)
        assert first.next_offset == 2
        second = await svc.find("passage", limit=2, offset=2)
        assert second.next_offset is None  # offset 4 would be refused
    finally:
        await svc.store.close()
