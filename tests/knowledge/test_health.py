"""The knowledge layer's probes against real parts: remote model servers stand in at the HTTP
boundary (``StubService``: no Ollama or OpenAI-compatible server runs here), the local model
from its installed package, the embedded store on a temp dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from knowledge.embeddings.local import LocalEmbedder
from knowledge.health import embedder_probe, vector_store_probe
from knowledge.service import KnowledgeService
from knowledge.settings import KnowledgeSettings
from knowledge.vectorstore.edge import EdgeVectorStore
from shield_common.probes import UP, ProbePolicy
from tests.support import StubService

POLICY = ProbePolicy(interval=3600.0, failures_down=1, successes_up=1, timeout=5.0)


class ModelServer:
    """Answers a model list at ``path`` until told to fail with ``status``."""

    def __init__(self, path: str, body: Any) -> None:
        self.path = path
        self.body = body
        self.status = 200

    def __call__(self, method: str, path: str, _body: Any) -> tuple[int, Any]:
        if method != "GET" or path != self.path:
            return 404, {"error": f"no route {method} {path}"}
        return self.status, self.body if self.status == 200 else {"error": "overloaded"}


async def up_then_down(settings: KnowledgeSettings, models: ModelServer, status: int) -> str:
    """Probes the embedder while its server answers, then once it answers ``status``; what
    the probe says then."""
    probe = embedder_probe(settings, POLICY)
    try:
        assert await probe.probe() is True
        models.status = status
        assert await probe.probe() is False
    finally:
        await probe.aclose()
    return probe.status


async def test_an_ollama_embedder_is_probed_by_its_model_list_not_an_embedding() -> None:
    models = ModelServer("/api/tags", {"models": [{"name": "nomic-embed-text:latest"}]})
    with StubService(models) as stub:
        settings = KnowledgeSettings(embedder="ollama", ollama_host=stub.url)
        status = await up_then_down(settings, models, 500)
    assert [(method, path) for method, path, _ in stub.requests] == [("GET", "/api/tags")] * 2
    assert status == (
        f"the Ollama embedder at {stub.url}/api/tags answered HTTP 500; check "
        "SHIELD_OLLAMA_HOST and that Ollama runs"
    )


async def test_an_openai_endpoint_gets_the_key_and_a_refusal_names_the_setting() -> None:
    models = ModelServer("/v1/models", {"object": "list", "data": []})
    with StubService(models) as stub:
        settings = KnowledgeSettings(
            embedder="openai", openai_base_url=f"{stub.url}/v1", openai_api_key="sk-test-key"
        )
        status = await up_then_down(settings, models, 401)
    assert stub.headers[0]["authorization"] == "Bearer sk-test-key"
    assert status == (
        f"the embeddings endpoint at {stub.url}/v1/models refused the API key (HTTP 401); "
        "check SHIELD_OPENAI_API_KEY"
    )


async def test_credentials_in_the_url_stay_out_of_what_a_probe_says() -> None:
    models = ModelServer("/v1/models", {"object": "list", "data": []})
    models.status = 503
    with StubService(models) as stub:
        base = stub.url.replace("http://", "http://user:pa55word@") + "/v1"
        probe = embedder_probe(KnowledgeSettings(embedder="openai", openai_base_url=base), POLICY)
        try:
            assert await probe.probe() is False
        finally:
            await probe.aclose()
    assert probe.status.startswith(
        f"the embeddings endpoint at {stub.url}/v1/models answered HTTP 503"
    )
    assert "pa55word" not in probe.status


async def test_a_model_server_that_is_not_there_is_unreachable(dead_port: int) -> None:
    settings = KnowledgeSettings(embedder="ollama", ollama_host=f"http://127.0.0.1:{dead_port}")
    probe = embedder_probe(settings, POLICY)
    try:
        assert await probe.probe() is False
    finally:
        await probe.aclose()
    assert probe.status == (
        f"the Ollama embedder at http://127.0.0.1:{dead_port}/api/tags is unreachable "
        "(ConnectError); check SHIELD_OLLAMA_HOST and that Ollama runs"
    )


async def test_an_answer_that_is_no_model_list_is_down() -> None:
    with StubService(lambda *_: (200, b"<html>a login page</html>")) as stub:
        probe = embedder_probe(KnowledgeSettings(embedder="ollama", ollama_host=stub.url), POLICY)
        try:
            assert await probe.probe() is False
        finally:
            await probe.aclose()
    assert "did not answer with JSON" in probe.status


async def test_the_local_model_is_up_when_its_files_are_installed() -> None:
    probe = embedder_probe(KnowledgeSettings(embedder="local"), POLICY)
    assert await probe.probe() is True
    assert probe.status == UP


async def test_the_vector_store_probe_looks_up_the_default_collection(
    tmp_path: Path, local_embedder: LocalEmbedder
) -> None:
    opened: list[KnowledgeService] = []

    def service() -> KnowledgeService:
        if not opened:
            opened.append(
                KnowledgeService(
                    local_embedder, EdgeVectorStore(tmp_path), default_collection="shield"
                )
            )
        return opened[0]

    probe = vector_store_probe(service, POLICY, hint="SHIELD_DATA_DIR")
    try:
        assert await probe.probe() is True
    finally:
        await opened[0].close()

    def broken() -> KnowledgeService:
        raise RuntimeError("postgres://admin:secret@db/x is locked")

    probe = vector_store_probe(broken, POLICY, hint="SHIELD_DATA_DIR")
    assert await probe.probe() is False
    assert probe.status == "unreachable (RuntimeError); check SHIELD_DATA_DIR"
