"""Behaviour the Ollama and OpenAI-compatible embedders share, against stand-in services.

See remote_fixtures.py for the stand-ins (real HTTP servers on 127.0.0.1).
"""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest

from knowledge.embeddings.remote import RemoteEmbedder
from knowledge.errors import DependencyRejected, DependencyUnavailable
from tests.knowledge.remote_fixtures import (
    OLLAMA,
    PROVIDERS,
    Provider,
    build,
    embedding_service,
    fake_vector,
    inputs,
)
from tests.support import StubService

# --- behaviour both providers share ---------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_vectors_come_back_in_input_order(
    provider: Provider, closing: list[RemoteEmbedder]
) -> None:
    texts = ["a short one", "a somewhat longer text", "x", "the last text of the batch"]
    with StubService(embedding_service(provider)) as stub:
        embedder = build(provider, stub.url, closing)
        vectors = await embedder.embed_documents(texts)
        query = await embedder.embed_query("what is this?")
    assert vectors == [fake_vector(t) for t in texts]
    assert query == fake_vector("what is this?")
    method, path, body = stub.requests[0]
    assert (method, path) == ("POST", provider.path)
    assert body["model"] == embedder.model
    assert body["input"] == texts


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("count", "batch_size"), [(7, 3), (6, 3), (1, 4), (5, 1)])
async def test_texts_are_sent_in_batches(
    provider: Provider, closing: list[RemoteEmbedder], count: int, batch_size: int
) -> None:
    texts = [f"text number {i}" + "!" * i for i in range(count)]
    with StubService(embedding_service(provider)) as stub:
        embedder = build(provider, stub.url, closing, batch_size=batch_size)
        vectors = await embedder.embed_documents(texts)
    assert len(stub.requests) == math.ceil(count / batch_size)
    assert inputs(stub) == [texts[i : i + batch_size] for i in range(0, count, batch_size)]
    assert vectors == [fake_vector(t) for t in texts]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_nothing_to_embed_sends_nothing(
    provider: Provider, closing: list[RemoteEmbedder]
) -> None:
    with StubService(embedding_service(provider)) as stub:
        embedder = build(provider, stub.url, closing)
        assert await embedder.embed_documents([]) == []
    assert stub.requests == []


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_dimension_probes_the_service_once(
    provider: Provider, closing: list[RemoteEmbedder]
) -> None:
    with StubService(embedding_service(provider)) as stub:
        embedder = build(provider, stub.url, closing)
        first = await embedder.dimension()
        second = await embedder.dimension()
        assert len(stub.requests) == 1
        await embedder.embed_documents(["more", "texts"])
        assert await embedder.dimension() == first
    assert first == second == len(fake_vector("anything"))
    assert len(stub.requests) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_dimension_is_known_without_a_probe_after_embedding(
    provider: Provider, closing: list[RemoteEmbedder]
) -> None:
    with StubService(embedding_service(provider)) as stub:
        embedder = build(provider, stub.url, closing)
        await embedder.embed_documents(["one"])
        assert await embedder.dimension() == 3
    assert len(stub.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_error_means_unavailable(
    provider: Provider, closing: list[RemoteEmbedder], status: int
) -> None:
    with StubService(lambda m, p, b: (status, provider.error("internal trouble"))) as stub:
        embedder = build(provider, stub.url, closing)
        with pytest.raises(DependencyUnavailable) as caught:
            await embedder.embed_documents(["hello"])
    assert str(status) in str(caught.value)
    assert "internal trouble" in str(caught.value)
    assert caught.value.retry_after is None  # one failure: the breaker is still closed


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_connection_refused_means_unavailable(
    provider: Provider, closing: list[RemoteEmbedder], dead_port: int
) -> None:
    url = f"http://127.0.0.1:{dead_port}"  # nothing listens there
    embedder = build(provider, url, closing)
    with pytest.raises(DependencyUnavailable, match="not reachable") as caught:
        await embedder.embed_documents(["hello"])
    assert "127.0.0.1" in str(caught.value)
    hint = "SHIELD_OLLAMA_HOST" if provider is OLLAMA else "SHIELD_OPENAI_BASE_URL"
    assert hint in str(caught.value)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_service_that_does_not_answer_in_time_is_unavailable(
    provider: Provider, closing: list[RemoteEmbedder]
) -> None:
    release = threading.Event()

    def hang(method: str, path: str, body: Any) -> tuple[int, Any]:
        release.wait(10)
        return 200, provider.answer([[1.0]])

    with StubService(hang) as stub:
        embedder = build(provider, stub.url, closing, timeout=0.2)
        try:
            with pytest.raises(DependencyUnavailable, match="Timeout"):
                await embedder.embed_documents(["hello"])
        finally:
            release.set()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_wrong_number_of_vectors_is_rejected(
    provider: Provider, closing: list[RemoteEmbedder]
) -> None:
    def one_short(method: str, path: str, body: Any) -> tuple[int, Any]:
        return 200, provider.answer([fake_vector(t) for t in body["input"][:-1]])

    with StubService(one_short) as stub:
        embedder = build(provider, stub.url, closing)
        with pytest.raises(DependencyRejected, match="returned 2 embeddings for 3 texts"):
            await embedder.embed_documents(["a", "b", "c"])


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_empty_vector_is_rejected(
    provider: Provider, closing: list[RemoteEmbedder]
) -> None:
    with StubService(lambda m, p, b: (200, provider.answer([[] for _ in b["input"]]))) as stub:
        embedder = build(provider, stub.url, closing)
        with pytest.raises(DependencyRejected, match="empty vector"):
            await embedder.embed_documents(["a"])


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_vector_with_nan_is_rejected(
    provider: Provider, closing: list[RemoteEmbedder]
) -> None:
    # JSON has no NaN, but Python's json module (and some servers) write it anyway.
    def answer(m: str, p: str, b: Any) -> tuple[int, Any]:
        return 200, provider.answer([[1.0, float("nan"), 0.0] for _ in b["input"]])

    with StubService(answer) as stub:
        embedder = build(provider, stub.url, closing)
        with pytest.raises(DependencyRejected, match="NaN or infinite"):
            await embedder.embed_documents(["a"])


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_change_of_vector_size_is_rejected(
    provider: Provider, closing: list[RemoteEmbedder]
) -> None:
    sizes = iter([3, 5])

    def growing(method: str, path: str, body: Any) -> tuple[int, Any]:
        size = next(sizes)
        return 200, provider.answer([[0.5] * size for _ in body["input"]])

    with StubService(growing) as stub:
        embedder = build(provider, stub.url, closing)
        await embedder.embed_documents(["first"])
        with pytest.raises(DependencyRejected, match="size 5 after earlier ones of size 3"):
            await embedder.embed_documents(["second"])


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<html>502 Bad Gateway</html>", id="html"),
        pytest.param(b'{"data": [', id="truncated-json"),
        pytest.param(b"[1, 2, 3]", id="json-array"),
        pytest.param(b'{"unexpected": true}', id="json-without-vectors"),
    ],
)
async def test_an_answer_in_the_wrong_format_is_rejected(
    provider: Provider, closing: list[RemoteEmbedder], body: bytes
) -> None:
    with StubService(lambda m, p, b: (200, body)) as stub:
        embedder = build(provider, stub.url, closing)
        with pytest.raises(DependencyRejected, match="format"):
            await embedder.embed_documents(["hello"])
    assert len(stub.requests) == 1
