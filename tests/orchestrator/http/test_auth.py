"""Bearer auth (SHIELD_ORCHESTRATOR_TOKEN) over a real uvicorn server."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from knowledge.embeddings.local import LocalEmbedder
from tests.orchestrator.http.conftest import TOKEN, api_for, crawl, error_of, make_settings, serving


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN])
async def test_every_route_but_health_needs_the_token(
    guarded_url: str, header: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"Authorization": header} if header else {}
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(base_url=guarded_url, headers=headers) as http:
        for method, path in [
            ("GET", "/jobs"),
            ("GET", "/jobs/abc"),
            ("GET", "/jobs/abc/events"),
            ("DELETE", "/jobs/abc"),
            ("GET", "/ready"),
            ("GET", "/metrics"),
            ("GET", "/openapi.json"),
            ("GET", "/no-such-route"),
        ]:
            response = await http.request(method, path)
            assert response.status_code == 401, (method, path)
            assert response.headers["www-authenticate"].startswith("Bearer")
            error = error_of(response)
            assert error["code"] == "unauthorized"
            assert "SHIELD_ORCHESTRATOR_TOKEN" in error["message"]
            assert TOKEN not in response.text
        # Refused before the body is read: a bad body still gets 401, not 422.
        response = await http.post("/ingest-async", content=b"{not json")
        assert response.status_code == 401
        assert (await http.get("/health")).status_code == 200
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_the_token_opens_every_route_whatever_the_schemes_case(
    guarded_url: str, scheme: str
) -> None:
    headers = {"Authorization": f"{scheme} {TOKEN}"}
    async with httpx.AsyncClient(base_url=guarded_url, headers=headers) as http:
        accepted = await http.post("/ingest-async", json=crawl())
        assert accepted.status_code == 202
        assert (await http.get(accepted.headers["location"])).status_code == 200
        assert (await http.get("/jobs")).status_code == 200
        assert (await http.get("/ready")).status_code == 200
        assert (await http.get("/metrics")).status_code == 200
        assert (await http.get("/openapi.json")).status_code == 200


async def test_without_a_token_configured_no_header_is_needed(
    data_dir: Path, docs_dir: Path, local_embedder: LocalEmbedder
) -> None:
    settings = make_settings(data_dir, docs_dir)
    async with (
        api_for(settings, local_embedder, workers=False) as api,
        serving(api.app) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        assert (await http.get("/jobs")).status_code == 200
        assert (await http.post("/ingest-async", json=crawl())).status_code == 202
