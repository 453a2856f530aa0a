"""Stand-ins for Ollama and an OpenAI-compatible endpoint, and the two providers described once.

Neither service can run on the test machine; each is replaced at the HTTP boundary by a real
HTTP server on 127.0.0.1, so the embedders, their HTTP clients and the breakers run for real.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from knowledge.breakers import Breaker
from knowledge.embeddings.ollama import OllamaEmbedder
from knowledge.embeddings.openai_compat import OpenAIEmbedder
from knowledge.embeddings.remote import RemoteEmbedder
from tests.support import StubService

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


def build(
    provider: Provider, url: str, closing: list[RemoteEmbedder], **kwargs: Any
) -> RemoteEmbedder:
    kwargs.setdefault("breaker", new_breaker())
    embedder = provider.make(url, **kwargs)
    closing.append(embedder)
    return embedder


def inputs(stub: StubService) -> list[list[str]]:
    return [body["input"] for _, _, body in stub.requests]
