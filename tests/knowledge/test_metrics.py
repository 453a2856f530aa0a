"""Embedding and vector-store metrics move when the real embedder and stores do work.

The service is built as the processes build it (knowledge.wiring), on the real offline
model, the embedded store, qdrant-client's in-memory engine, and a stand-in Ollama.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from knowledge import metrics
from knowledge.errors import DependencyUnavailable, InvalidInput
from knowledge.service import Document, KnowledgeService
from knowledge.settings import KnowledgeSettings
from knowledge.vectorstore.measured import MeasuredStore
from knowledge.wiring import build_embedder, build_service
from tests.knowledge.remote_fixtures import OLLAMA, embedding_service
from tests.support import StubService, closed_port


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def embeds(provider: str, purpose: str) -> tuple[float, float]:
    """(calls, texts) of that provider and purpose so far."""
    labels = {"provider": provider, "purpose": purpose}
    return (
        sample("embedding_duration_seconds_count", **labels),
        sample("embedding_batch_size_sum", **labels),
    )


def store_ops(store: str, operation: str) -> tuple[float, float]:
    """(operations, errors) of that store so far."""
    labels = {"store": store, "operation": operation}
    return (
        sample("vector_store_operation_duration_seconds_count", **labels),
        sample("vector_store_operation_errors_total", **labels),
    )


@pytest.fixture(params=["edge", "qdrant"])
async def service(
    request: pytest.FixtureRequest, data_dir: Path
) -> AsyncIterator[KnowledgeService]:
    extra: dict[str, Any] = {"qdrant_url": ":memory:"} if request.param == "qdrant" else {}
    svc = build_service(KnowledgeSettings(data_dir=data_dir, **extra))
    try:
        yield svc
    finally:
        await svc.close()


def kind_of(service: KnowledgeService) -> str:
    """The store label the wiring gave this service's store."""
    assert isinstance(service.store, MeasuredStore)
    return service.store.kind


async def test_storing_and_searching_move_the_embedding_and_store_metrics(
    service: KnowledgeService,
) -> None:
    store = kind_of(service)
    docs = [Document(f"Passage {i} about metrics.", {"source": "m.md"}) for i in range(3)]
    before = {
        "document": embeds("local", "document"),
        "query": embeds("local", "query"),
        "upsert": store_ops(store, "upsert"),
        "search": store_ops(store, "search"),
    }

    await service.store_documents(docs)
    await service.find("metrics")
    await service.find("metrics")  # answered from the query cache: no embedding call

    assert embeds("local", "document") == (
        before["document"][0] + 1,
        before["document"][1] + 3,
    )
    assert embeds("local", "query") == (before["query"][0] + 1, before["query"][1] + 1)
    assert store_ops(store, "upsert") == (before["upsert"][0] + 1, before["upsert"][1])
    assert store_ops(store, "search") == (before["search"][0] + 2, before["search"][1])


async def test_a_refused_collection_name_is_not_a_store_error(service: KnowledgeService) -> None:
    store = kind_of(service)
    before = store_ops(store, "collection_exists")
    with pytest.raises(InvalidInput):
        await service.store.collection_exists("../outside")
    calls, errors = store_ops(store, "collection_exists")
    assert (calls, errors) == (before[0] + 1, before[1])


async def test_a_store_that_is_down_counts_an_error(data_dir: Path) -> None:
    with closed_port() as port:
        settings = KnowledgeSettings(data_dir=data_dir, qdrant_url=f"http://127.0.0.1:{port}")
        service = build_service(settings)
        before = store_ops("qdrant", "ensure_collection")
        try:
            with pytest.raises(DependencyUnavailable):
                await service.store_documents([Document("Nowhere to go.", {})])
        finally:
            await service.close()
    assert store_ops("qdrant", "ensure_collection") == (before[0] + 1, before[1] + 1)


async def test_a_remote_provider_is_labelled_with_its_name(data_dir: Path) -> None:
    with StubService(embedding_service(OLLAMA)) as stub:
        settings = KnowledgeSettings(
            data_dir=data_dir, embedder="ollama", ollama_host=stub.url, embed_batch_size=2
        )
        embedder = build_embedder(settings)
        before = embeds("ollama", "document")
        try:
            vectors = await embedder.embed_documents(["a", "bb", "ccc", "dddd", "eeeee"])
        finally:
            await embedder.aclose()
    assert len(vectors) == 5
    assert len(stub.requests) == 3  # batched by the provider; measured as one call
    assert embeds("ollama", "document") == (before[0] + 1, before[1] + 5)


async def test_time_is_reported_to_the_task_s_listener_only(data_dir: Path) -> None:
    heard: list[tuple[str, float]] = []
    service = build_service(KnowledgeSettings(data_dir=data_dir))
    listener: Callable[[str, float], Any] = lambda what, seconds: heard.append((what, seconds))  # noqa: E731
    try:
        token = metrics.timings.set(listener)
        try:
            await service.store_documents([Document("Heard by the listener.", {})])
        finally:
            metrics.timings.reset(token)
        inside = list(heard)
        await service.store_documents([Document("Not heard: no listener.", {})])
    finally:
        await service.close()

    assert {what for what, _ in inside} == {"embed", "store"}
    assert all(seconds >= 0 for _, seconds in inside)
    assert heard == inside
