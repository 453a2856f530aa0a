"""GET /health (liveness) and GET /ready (the runtime's components)."""

from __future__ import annotations

from pathlib import Path

import httpx

from knowledge.embeddings.local import LocalEmbedder
from knowledge.service import KnowledgeService
from knowledge.vectorstore.edge import EdgeVectorStore
from orchestrator.composition import compose_orchestrator
from tests.orchestrator.http.conftest import BASE, Api, make_settings


async def test_health_answers(idle: Api) -> None:
    response = await idle.http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_every_component_answers(idle: Api) -> None:
    response = await idle.http.get("/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["components"]
    assert set(body["components"].values()) == {"ok"}


async def test_not_ready_names_the_component_that_is_down(
    data_dir: Path, docs_dir: Path, local_embedder: LocalEmbedder, dead_port: int
) -> None:
    # A job store nobody listens for: a PostgreSQL URL on a port that refuses connections.
    dead = f"postgresql://postgres@127.0.0.1:{dead_port}/shield_nowhere"
    settings = make_settings(data_dir, docs_dir, database_url=dead)
    service = KnowledgeService(
        local_embedder, EdgeVectorStore(data_dir), default_collection=settings.collection
    )
    # Not started: its owner would fail to start it; the probe must still say why.
    app = compose_orchestrator(settings, service=service, run_workers=False).app
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            response = await http.get("/ready")
            health = await http.get("/health")
    finally:
        await service.close()
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    body = response.json()
    assert body["status"] == "not_ready"
    broken = {name: state for name, state in body["components"].items() if state != "ok"}
    assert broken, body
    assert body["error"]["code"] == "not_ready"
    for name in broken:
        assert name in body["error"]["message"]
    assert health.status_code == 200  # liveness is not readiness
