"""The Ollama and OpenAI-compatible embedders against stand-in HTTP services.

Neither Ollama nor an OpenAI-compatible endpoint can run on the test machine, so each is
replaced at the HTTP boundary by a real HTTP server on 127.0.0.1 (``StubService``, or the
``RawStub`` below when a test needs request headers or a body that is not JSON). The
embedders, their HTTP clients and the breakers all run for real.
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from knowledge.breakers import Breaker
from knowledge.embeddings.ollama import OllamaEmbedder
from knowledge.embeddings.openai_compat import OpenAIEmbedder
from knowledge.embeddings.remote import RemoteEmbedder
from knowledge.errors import DependencyRejected, DependencyUnavailable
from tests.support import StubService, free_port

# --- stand-in services ----------------------------------------------------------------------


# (method, path, json body or None, headers) -> (status, raw body)
RawHandler = Callable[[str, str, Any, dict[str, str]], tuple[int, bytes]]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out has hung up; writing the late answer then fails. Expected.
        pass


class RawStub(StubService):
    """Like ``StubService`` (same start/stop), but the handler gets the request headers and
    answers raw bytes, so tests can check ``Authorization`` and send bodies that are not JSON.
    It stands in for Ollama / an OpenAI-compatible endpoint, which cannot run here."""

    def __init__(self, raw_handler: RawHandler) -> None:
        self.raw_handler = raw_handler
        self.requests: list[tuple[str, str, Any]] = []
        self.headers: list[dict[str, str]] = []
        stub = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                stub.requests.append((self.command, self.path, body))
                stub.headers.append(headers)
                status, data = stub.raw_handler(self.command, self.path, body, headers)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )


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


@pytest.fixture
async def closing() -> AsyncIterator[list[RemoteEmbedder]]:
    """Embedders appended here are closed after the test."""
    made: list[RemoteEmbedder] = []
    yield made
    for embedder in made:
        await embedder.aclose()


def build(
    provider: Provider, url: str, closing: list[RemoteEmbedder], **kwargs: Any
) -> RemoteEmbedder:
    kwargs.setdefault("breaker", new_breaker())
    embedder = provider.make(url, **kwargs)
    closing.append(embedder)
    return embedder


def inputs(stub: StubService) -> list[list[str]]:
    return [body["input"] for _, _, body in stub.requests]


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
    provider: Provider, closing: list[RemoteEmbedder]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
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

    def hang(method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, bytes]:
        release.wait(10)
        return 200, json.dumps(provider.answer([[1.0]])).encode()

    with RawStub(hang) as stub:
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
    with RawStub(lambda m, p, b, h: (200, body)) as stub:
        embedder = build(provider, stub.url, closing)
        with pytest.raises(DependencyRejected, match="format"):
            await embedder.embed_documents(["hello"])
    assert len(stub.requests) == 1


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
    def answer(method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, bytes]:
        return 200, json.dumps(OPENAI.answer([fake_vector(t) for t in body["input"]])).encode()

    with RawStub(answer) as stub:
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
    closing: list[RemoteEmbedder],
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # never contacted: the name needs no request
    ollama = build(OLLAMA, url, closing)
    openai = OpenAIEmbedder(base_url=url, model="BAAI/bge-m3", breaker=new_breaker())
    closing.append(openai)
    assert ollama.vector_name == "ollama-nomic-embed-text"
    assert openai.vector_name == "openai-baai-bge-m3"
