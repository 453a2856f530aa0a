"""A model server's probe against servers without a model list: an OpenAI-compatible server
that does not route ``GET /models`` still answered, so it is up; a refused key is not.

The servers stand in at the HTTP boundary (``StubService``): no such server runs here."""

from __future__ import annotations

from typing import Any

import pytest

from knowledge.health import embedder_probe
from knowledge.settings import KnowledgeSettings
from shield_common.probes import UP, ProbePolicy
from tests.support import StubService

POLICY = ProbePolicy(interval=3600.0, failures_down=1, successes_up=1, timeout=5.0)


def answering(status: int) -> Any:
    def handle(method: str, path: str, _body: Any) -> tuple[int, Any]:
        return status, {"error": {"message": f"stand-in says {status} to {method} {path}"}}

    return handle


async def probe_status(settings: KnowledgeSettings) -> tuple[bool | None, str]:
    probe = embedder_probe(settings, POLICY)
    try:
        up = await probe.probe()
    finally:
        await probe.aclose()
    return up, probe.status


@pytest.mark.parametrize("status", [404, 405])
async def test_an_openai_server_without_a_model_list_is_up(status: int) -> None:
    with StubService(answering(status)) as stub:
        settings = KnowledgeSettings(
            embedder="openai", openai_base_url=f"{stub.url}/v1", openai_api_key="sk-test"
        )
        assert await probe_status(settings) == (True, UP)
    assert [(m, p) for m, p, _ in stub.requests] == [("GET", "/v1/models")]


@pytest.mark.parametrize("status", [401, 403])
async def test_an_openai_server_refusing_the_key_is_down_and_names_the_setting(
    status: int,
) -> None:
    with StubService(answering(status)) as stub:
        settings = KnowledgeSettings(embedder="openai", openai_base_url=f"{stub.url}/v1")
        up, said = await probe_status(settings)
    assert up is False
    assert said == (
        f"the embeddings endpoint at {stub.url}/v1/models refused the API key (HTTP {status}); "
        "check SHIELD_OPENAI_API_KEY"
    )


async def test_an_ollama_url_without_its_model_list_is_still_down() -> None:
    # Every Ollama serves /api/tags: a 404 there is some other server at the configured URL.
    with StubService(answering(404)) as stub:
        up, said = await probe_status(KnowledgeSettings(embedder="ollama", ollama_host=stub.url))
    assert up is False
    assert said == (
        f"the Ollama embedder at {stub.url}/api/tags answered HTTP 404; check "
        "SHIELD_OLLAMA_HOST and that Ollama runs"
    )
