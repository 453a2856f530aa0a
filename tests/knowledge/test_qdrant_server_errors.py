"""QdrantServerStore's error mapping against a stand-in Qdrant HTTP server.

No Qdrant server binary can run here; a real HTTP server on 127.0.0.1 answers the way
Qdrant does for errors, so qdrant-client, the breaker and our mapping run for real.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from knowledge.breakers import Breaker
from knowledge.errors import DependencyRejected, DependencyUnavailable
from knowledge.vectorstore.qdrant_server import QdrantServerStore
from tests.support import StubService

pytestmark = [
    pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection"),
    pytest.mark.filterwarnings("ignore:Failed to obtain server version"),
]


def answering(status: int) -> Any:
    def handle(method: str, path: str, body: Any) -> tuple[int, Any]:
        return status, {"status": {"error": f"stand-in error {status}"}, "time": 0.0}

    return handle


def store_at(url: str, **kwargs: Any) -> QdrantServerStore:
    breaker = Breaker(f"test-qdrant-{uuid.uuid4().hex[:8]}", failure_threshold=2)
    return QdrantServerStore(url, api_key="k-secret", breaker=breaker, **kwargs)


async def test_a_refused_key_points_at_the_setting() -> None:
    with StubService(answering(403)) as stub:
        store = store_at(stub.url.replace("http://", "http://admin:pw@"))
        try:
            with pytest.raises(DependencyRejected, match="SHIELD_QDRANT_API_KEY") as caught:
                await store.collection_exists("notes")
        finally:
            await store.close()
    assert "pw" not in str(caught.value) and "admin" not in str(caught.value)


async def test_server_errors_open_the_breaker() -> None:
    with StubService(answering(500)) as stub:
        store = store_at(stub.url)
        try:
            for _ in range(2):
                with pytest.raises(DependencyUnavailable, match="HTTP 500"):
                    await store.collection_exists("notes")
            calls = len(stub.requests)
            with pytest.raises(DependencyUnavailable, match="circuit breaker is open"):
                await store.collection_exists("notes")
            assert len(stub.requests) == calls
        finally:
            await store.close()


async def test_an_unreachable_server_says_which_setting_to_check(dead_port: int) -> None:
    store = store_at(f"http://127.0.0.1:{dead_port}/?api_key=leak")
    try:
        with pytest.raises(DependencyUnavailable, match="SHIELD_QDRANT_URL") as caught:
            await store.collection_exists("notes")
    finally:
        await store.close()
    assert "leak" not in str(caught.value)
