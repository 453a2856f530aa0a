"""Stand-ins for Ollama and an OpenAI-compatible endpoint, and the two providers described once.

Neither service can run on the test machine; each is replaced at the HTTP boundary by a real
HTTP server on 127.0.0.1, so the embedders, their HTTP clients and the breakers run for real.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from knowledge.breakers import Breaker
from knowledge.embeddings.ollama import OllamaEmbedder
from knowledge.embeddings.openai_compat import OpenAIEmbedder
from knowledge.embeddings.remote import RemoteEmbedder
from tests.support import StubService

# --- the two providers, described once so shared behaviour is tested on both ---------------


def fake_vector(text: str) -> list[float]:
    """The stand-in "model": a 3-d vector that depends on the text, so order is checkable."""
    return [float(len(text)), float(sum(map(ord, text)) % 101), 1.0]


@dataclass(frozen=True)
class Provider:
    name: str
    path: str  # the path the embedder must POST to (base URL for OpenAI ends in /v1)
    make: Callable[..., RemoteEmbedder]
    answer: Callable[[list[list[float]]], Any]  # vectors -> the provider's JSON reply
    error: Callable[[str], Any]  # message -> the provider's JSON error body


def _make_ollama(url: str, **kwargs: Any) -> RemoteEmbedder:
    return OllamaEmbedder(host=url, model="nomic-embed-text", **kwargs)


def _make_openai(url: str, **kwargs: Any) -> RemoteEmbedder:
    return OpenAIEmbedder(base_url=f"{url}/v1", model="text-embedding-3-small", **kwargs)


OLLAMA = Provider(
    name="ollama",
    path="/api/embed",
    make=_make_ollama,
    answer=lambda vectors: {"model": "nomic-embed-text", "embeddings": vectors},
    error=lambda message: {"error": message},
)
OPENAI = Provider(
    name="openai",
    path="/v1/embeddings",
    make=_make_openai,
    # Real OpenAI-compatible servers may return items out of order; the index says which.
    answer=lambda vectors: {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": v}
            for i, v in reversed(list(enumerate(vectors)))
        ],
        "model": "text-embedding-3-small",
    },
    error=lambda message: {"error": {"message": message, "type": "invalid_request_error"}},
)
PROVIDERS = [pytest.param(OLLAMA, id="ollama"), pytest.param(OPENAI, id="openai")]


def embedding_service(provider: Provider) -> Callable[[str, str, Any], tuple[int, Any]]:
    def handle(method: str, path: str, body: Any) -> tuple[int, Any]:
        if method != "POST" or path != provider.path:
            return 404, provider.error(f"no route {method} {path}")
        return 200, provider.answer([fake_vector(t) for t in body["input"]])

    return handle


def new_breaker(**kwargs: Any) -> Breaker:
    return Breaker(f"test-embed-{uuid.uuid4().hex[:8]}", **kwargs)


def build(
    provider: Provider, url: str, closing: list[RemoteEmbedder], **kwargs: Any
) -> RemoteEmbedder:
    kwargs.setdefault("breaker", new_breaker())
    embedder = provider.make(url, **kwargs)
    closing.append(embedder)
    return embedder


def inputs(stub: StubService) -> list[list[str]]:
    return [body["input"] for _, _, body in stub.requests]
