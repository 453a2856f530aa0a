"""The tools on the Ollama and OpenAI-compatible embedders, end to end.

Neither service can run here, so a stand-in HTTP server on 127.0.0.1 answers with their
documented JSON; everything from the tool down to the HTTP client is the real code.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from prometheus_client import REGISTRY

from tests.mcp_server.servers import shield_server
from tests.support import StubService

DIM = 64


def bag_of_words(text: str) -> list[float]:
    """A deterministic embedding where shared words mean similar vectors."""
    vector = [0.0] * DIM
    for word in text.lower().split():
        vector[int(hashlib.md5(word.strip(".,?!").encode()).hexdigest(), 16) % DIM] += 1.0  # noqa: S324
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def ollama(method: str, path: str, body: Any) -> tuple[int, Any]:
    if path != "/api/embed":
        return 404, {"error": "not found"}
    if body["model"] != "nomic-embed-text":
        return 404, {"error": f'model "{body["model"]}" not found, try pulling it first'}
    return 200, {"model": body["model"], "embeddings": [bag_of_words(t) for t in body["input"]]}


def openai(method: str, path: str, body: Any) -> tuple[int, Any]:
    if path != "/v1/embeddings":
        return 404, {"error": {"message": "no such route"}}
    data = [
        {"object": "embedding", "index": i, "embedding": bag_of_words(t)}
        for i, t in enumerate(body["input"])
    ]
    return 200, {"object": "list", "data": data, "model": body["model"]}


@pytest.mark.parametrize("provider", ["ollama", "openai"])
async def test_store_and_find_through_a_remote_embedder(provider: str, data_dir: Path) -> None:
    with StubService(ollama if provider == "ollama" else openai) as stub:
        extra = (
            {"ollama_host": stub.url}
            if provider == "ollama"
            else {"openai_base_url": f"{stub.url}/v1", "openai_api_key": "sk-test"}
        )
        settings = dict(data_dir=data_dir, embedder=provider, **extra)  # type: ignore[arg-type]
        async with Client(shield_server(**settings)) as client:
            await client.call_tool(
                "qdrant_store",
                {
                    "documents": [
                        {"text": "red apples grow on trees"},
                        {"text": "submarines dive under the sea"},
                    ]
                },
            )
            found = await client.call_tool("qdrant_find", {"query": "apples on trees", "limit": 1})
        assert found.structured_content is not None
        assert found.structured_content["results"][0]["text"] == "red apples grow on trees"
        embed_calls = [r for r in stub.requests if r[1].endswith("embed") or "embeddings" in r[1]]
        assert len(embed_calls) == 2  # one batch for the store, one for the query


async def test_a_missing_ollama_model_is_a_clear_tool_error(data_dir: Path) -> None:
    with StubService(ollama) as stub:
        settings = dict(
            data_dir=data_dir, embedder="ollama", ollama_host=stub.url, embed_model="llama-embed"
        )
        async with Client(shield_server(**settings)) as client:
            result = await client.call_tool("qdrant_store", {"text": "x"}, raise_on_error=False)
    assert result.is_error
    message = result.content[0].text  # type: ignore[union-attr]
    assert "llama-embed" in message and "ollama pull llama-embed" in message


async def test_ollama_down_opens_the_breaker_and_the_tool_says_when_to_retry(
    data_dir: Path, dead_port: int
) -> None:
    settings = dict(  # nothing listens on dead_port: Ollama is down
        data_dir=data_dir,
        embedder="ollama",
        ollama_host=f"http://127.0.0.1:{dead_port}",
        breaker_failure_threshold=3,
        breaker_recovery_seconds=30,
    )
    async with Client(shield_server(**settings)) as client:
        messages = []
        for _ in range(4):
            result = await client.call_tool("qdrant_store", {"text": "x"}, raise_on_error=False)
            assert result.is_error
            messages.append(result.content[0].text)  # type: ignore[union-attr]
        assert all("not reachable" in m for m in messages[:3])
        assert "circuit breaker is open" in messages[3] and "Retry in" in messages[3]
        assert REGISTRY.get_sample_value("circuit_breaker_state", {"breaker": "ollama"}) == 1.0
