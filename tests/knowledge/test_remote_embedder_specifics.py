"""What is particular to the Ollama and to the OpenAI-compatible embedder.

See remote_fixtures.py for the stand-ins (real HTTP servers on 127.0.0.1).
"""

from __future__ import annotations

from typing import Any

import pytest

from knowledge.embeddings.openai_compat import OpenAIEmbedder
from knowledge.embeddings.remote import RemoteEmbedder
from knowledge.errors import DependencyRejected, DependencyUnavailable
from tests.knowledge.remote_fixtures import (
    OLLAMA,
    OPENAI,
    build,
    embedding_service,
    fake_vector,
    new_breaker,
)
from tests.support import StubService

# --- Ollama specifics -----------------------------------------------------------------------


async def test_ollama_missing_model_names_the_model_and_the_pull_command(
    closing: list[RemoteEmbedder],
) -> None:
    def no_such_model(method: str, path: str, body: Any) -> tuple[int, Any]:
        return 404, {"error": f'model "{body["model"]}" not found, try pulling it first'}

    with StubService(no_such_model) as stub:
        embedder = build(OLLAMA, stub.url, closing)
        with pytest.raises(DependencyRejected) as caught:
            await embedder.embed_documents(["hello"])
    message = str(caught.value)
    assert "'nomic-embed-text'" in message
    assert "`ollama pull nomic-embed-text`" in message
    assert "not found, try pulling it first" in message
    assert stub.url in message


async def test_ollama_bad_request_is_rejected_not_unavailable(
    closing: list[RemoteEmbedder],
) -> None:
    with StubService(lambda m, p, b: (400, {"error": "input exceeds context length"})) as stub:
        embedder = build(OLLAMA, stub.url, closing)
        with pytest.raises(DependencyRejected, match="input exceeds context length"):
            await embedder.embed_documents(["hello"])


# --- OpenAI-compatible specifics ------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
async def test_openai_refused_key_points_at_the_api_key_setting(
    closing: list[RemoteEmbedder], status: int
) -> None:
    with StubService(lambda m, p, b: (status, OPENAI.error("Incorrect API key provided"))) as stub:
        embedder = build(OPENAI, stub.url, closing, api_key="sk-wrong")
        with pytest.raises(DependencyRejected) as caught:
            await embedder.embed_documents(["hello"])
    message = str(caught.value)
    assert "SHIELD_OPENAI_API_KEY" in message
    assert f"HTTP {status}" in message
    assert "Incorrect API key provided" in message


async def test_openai_unknown_model_names_the_model(closing: list[RemoteEmbedder]) -> None:
    with StubService(lambda m, p, b: (404, OPENAI.error("The model does not exist"))) as stub:
        embedder = build(OPENAI, stub.url, closing)
        with pytest.raises(DependencyRejected) as caught:
            await embedder.embed_documents(["hello"])
    message = str(caught.value)
    assert "'text-embedding-3-small'" in message
    assert "SHIELD_EMBED_MODEL" in message
    assert "The model does not exist" in message


async def test_openai_rate_limit_means_unavailable(closing: list[RemoteEmbedder]) -> None:
    with StubService(lambda m, p, b: (429, OPENAI.error("Rate limit reached"))) as stub:
        embedder = build(OPENAI, stub.url, closing)
        with pytest.raises(DependencyUnavailable, match="HTTP 429"):
            await embedder.embed_documents(["hello"])


@pytest.mark.parametrize(
    ("api_key", "expected"), [("sk-test-123", "Bearer sk-test-123"), (None, None)]
)
async def test_openai_sends_the_api_key_only_when_given(
    closing: list[RemoteEmbedder], api_key: str | None, expected: str | None
) -> None:
    def answer(method: str, path: str, body: Any) -> tuple[int, Any]:
        return 200, OPENAI.answer([fake_vector(t) for t in body["input"]])

    with StubService(answer) as stub:
        embedder = build(OPENAI, stub.url, closing, api_key=api_key, batch_size=1)
        await embedder.embed_documents(["one", "two"])
    assert len(stub.headers) == 2
    assert [h.get("authorization") for h in stub.headers] == [expected, expected]
    assert all(h["content-type"] == "application/json" for h in stub.headers)


async def test_openai_base_url_with_trailing_slash(closing: list[RemoteEmbedder]) -> None:
    with StubService(embedding_service(OPENAI)) as stub:
        embedder = OpenAIEmbedder(
            base_url=f"{stub.url}/v1/", model="m", breaker=new_breaker(), batch_size=2
        )
        closing.append(embedder)
        assert await embedder.embed_documents(["a", "bb", "ccc"]) == [
            fake_vector(t) for t in ["a", "bb", "ccc"]
        ]
    assert [path for _, path, _ in stub.requests] == ["/v1/embeddings", "/v1/embeddings"]


async def test_vector_names_derive_from_provider_and_model(
    closing: list[RemoteEmbedder], dead_port: int
) -> None:
    url = f"http://127.0.0.1:{dead_port}"  # never contacted: the name needs no request
    ollama = build(OLLAMA, url, closing)
    openai = OpenAIEmbedder(base_url=url, model="BAAI/bge-m3", breaker=new_breaker())
    closing.append(openai)
    assert ollama.vector_name == "ollama-nomic-embed-text"
    assert openai.vector_name == "openai-baai-bge-m3"
