"""The vector-store probe checks the store's reachability beside its breaker and metrics.

A Qdrant server cannot run here: a real HTTP server on 127.0.0.1 answers the collection
lookup the way Qdrant does (``StubService``), so qdrant-client, the breaker, the measured
store and the probe run for real. The embedded store is the real engine on a temp dir.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from knowledge.breakers import Breaker
from knowledge.embeddings.local import LocalEmbedder
from knowledge.errors import DependencyUnavailable
from knowledge.health import vector_store_probe
from knowledge.metrics import OPERATIONS
from knowledge.service import KnowledgeService
from knowledge.vectorstore.edge import EdgeVectorStore
from knowledge.vectorstore.measured import MeasuredStore
from knowledge.vectorstore.qdrant_server import QdrantServerStore
from shield_common.probes import UP, DependencyProbe, ProbePolicy
from tests.support import StubService

pytestmark = [pytest.mark.filterwarnings("ignore:Failed to obtain server version")]

POLICY = ProbePolicy(interval=3600.0, failures_down=1, successes_up=1, timeout=5.0)
COLLECTION = "shield"


class QdrantStandIn:
    """Answers ``GET /collections/<name>/exists`` as Qdrant does, or fails with ``status``."""

    def __init__(self) -> None:
        self.status = 200

    def __call__(self, method: str, path: str, _body: Any) -> tuple[int, Any]:
        if self.status != 200:
            return self.status, {"status": {"error": "stand-in overloaded"}, "time": 0.0}
        if method == "GET" and path.endswith("/exists"):
            return 200, {"result": {"exists": True}, "status": "ok", "time": 0.0}
        return 404, {"status": {"error": f"no route {method} {path}"}, "time": 0.0}


def operations(store: str) -> list[float | None]:
    """Every operation's duration count and error count of ``store`` in this process."""
    out: list[float | None] = []
    for operation in OPERATIONS:
        labels = {"store": store, "operation": operation}
        out.append(
            REGISTRY.get_sample_value("vector_store_operation_duration_seconds_count", labels)
        )
        out.append(REGISTRY.get_sample_value("vector_store_operation_errors_total", labels))
    return out


def lookups(stub: StubService) -> int:
    """Collection lookups the server got (qdrant-client also asks ``GET /`` for the
    server's version, in the background, whenever it gets to it)."""
    return sum(1 for _method, path, _body in stub.requests if path.endswith("/exists"))


def probe_of(service: KnowledgeService) -> DependencyProbe:
    return vector_store_probe(lambda: service, POLICY, hint="SHIELD_QDRANT_URL")


async def test_the_qdrant_probe_sees_the_server_while_the_breaker_is_open(
    local_embedder: LocalEmbedder,
) -> None:
    qdrant = QdrantStandIn()
    breaker = Breaker(f"test-qdrant-{uuid.uuid4().hex[:8]}", failure_threshold=2)
    with StubService(qdrant) as stub:
        store = MeasuredStore(QdrantServerStore(stub.url, breaker=breaker), "qdrant")
        service = KnowledgeService(local_embedder, store, default_collection=COLLECTION)
        probe = probe_of(service)
        try:
            qdrant.status = 500
            before = operations("qdrant")
            for _ in range(3):  # more failed probes than the breaker's threshold
                assert await probe.probe() is False
            assert breaker.state == "closed"  # probes are no calls the breaker counts
            assert probe.status.startswith(f"The Qdrant server at {stub.url} failed (HTTP 500)")

            for _ in range(2):  # real calls open it
                with pytest.raises(DependencyUnavailable, match="HTTP 500"):
                    await store.collection_exists(COLLECTION)
            assert breaker.state == "open"
            after_calls = operations("qdrant")
            assert after_calls != before  # the real calls were measured

            qdrant.status = 200  # the server is back; the breaker is still open
            sent = lookups(stub)
            assert await probe.probe() is True
            assert probe.status == UP
            assert lookups(stub) == sent + 1  # the probe asked the server itself
            assert operations("qdrant") == after_calls  # probes only: nothing measured
            assert breaker.state == "open"
            with pytest.raises(DependencyUnavailable, match="circuit breaker is open"):
                await store.collection_exists(COLLECTION)  # real calls still wait for it
        finally:
            await store.close()


async def test_the_embedded_probe_checks_the_engine_and_its_directory(
    tmp_path: Path, local_embedder: LocalEmbedder
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    store = MeasuredStore(EdgeVectorStore(data_dir), "edge")
    service = KnowledgeService(local_embedder, store, default_collection=COLLECTION)
    probe = vector_store_probe(lambda: service, POLICY, hint="SHIELD_DATA_DIR")
    before = operations("edge")
    try:
        assert await probe.probe() is True
        shutil.rmtree(data_dir)  # the volume went away under a running process
        assert await probe.probe() is False
        assert probe.status == f"the data directory {data_dir} is missing"
        data_dir.mkdir()
        assert await probe.probe() is True
    finally:
        await store.close()
    assert await probe.probe() is False
    assert probe.status == "the embedded vector store is closed"
    assert operations("edge") == before
