"""The OpenAPI schema documents every route with its typed models (and the auth scheme)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from knowledge.embeddings.local import LocalEmbedder
from tests.orchestrator.http.conftest import TOKEN, Api, api_for, make_settings

ROUTES = {
    ("/ingest-async", "post"),
    ("/jobs", "get"),
    ("/jobs/{job_id}", "get"),
    ("/jobs/{job_id}", "delete"),
    ("/jobs/{job_id}/events", "get"),
    ("/health", "get"),
    ("/ready", "get"),
    ("/metrics", "get"),
}


def ref(content: dict[str, Any]) -> str:
    return str(content["application/json"]["schema"]["$ref"]).rsplit("/", 1)[-1]


async def test_every_route_is_documented_with_its_models(idle: Api) -> None:
    schema = (await idle.http.get("/openapi.json")).json()
    assert schema["info"]["title"] == "shield-mcp orchestrator"
    paths = schema["paths"]
    assert {(path, method) for path, ops in paths.items() for method in ops} >= ROUTES

    ingest = paths["/ingest-async"]["post"]
    body = ingest["requestBody"]["content"]["application/json"]["schema"]
    variants = {item["$ref"].rsplit("/", 1)[-1] for item in body["oneOf"]}
    assert variants == {"CrawlRequest", "DocumentRequest"}
    assert body["discriminator"]["propertyName"] == "kind"
    assert ref(ingest["responses"]["202"]["content"]) == "JobAccepted"
    assert ref(ingest["responses"]["422"]["content"]) == "ErrorBody"
    assert any(p["name"].lower() == "idempotency-key" for p in ingest["parameters"])

    job = paths["/jobs/{job_id}"]
    assert ref(job["get"]["responses"]["200"]["content"]) == "Job"
    assert ref(job["get"]["responses"]["404"]["content"]) == "ErrorBody"
    assert "wait" in {p["name"] for p in job["get"]["parameters"]}
    assert ref(job["delete"]["responses"]["409"]["content"]) == "ErrorBody"
    assert ref(paths["/jobs"]["get"]["responses"]["200"]["content"]) == "JobPage"
    events = paths["/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    assert "text/event-stream" in events
    assert ref(paths["/ready"]["get"]["responses"]["503"]["content"]) == "Readiness"
    for name in ("Job", "JobAccepted", "JobPage", "ErrorBody", "CrawlRequest", "DocumentRequest"):
        assert name in schema["components"]["schemas"]


async def test_the_bearer_scheme_is_documented_when_a_token_is_set(
    data_dir: Path, docs_dir: Path, local_embedder: LocalEmbedder
) -> None:
    settings = make_settings(data_dir, docs_dir, orchestrator_token=TOKEN)
    async with api_for(settings, local_embedder, workers=False) as api:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        schema = (await api.http.get("/openapi.json", headers=headers)).json()
    scheme = schema["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    for path, method in ROUTES:
        operation = schema["paths"][path][method]
        if path == "/health":
            assert "security" not in operation
        else:
            assert {"bearer": []} in operation["security"], (path, method)
            assert ref(operation["responses"]["401"]["content"]) == "ErrorBody"
