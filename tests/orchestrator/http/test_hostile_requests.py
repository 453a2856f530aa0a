"""Hostile values get a 422 that names the problem, never a 5xx, and the schema states
the bounds the API enforces.

Regressions: a source path with a name longer than the file system allows (ENAMETOOLONG),
a lone surrogate in a crawl URL (it broke the request hash) and ``offset=2**63`` (SQLite's
integers are 64-bit) each answered 500.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.orchestrator.http.conftest import Api, crawl, markdown_doc


async def refused(api: Api, body: Any) -> str:
    raw = body if isinstance(body, str) else json.dumps(body)
    response = await api.http.post(
        "/ingest-async", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    message: str = response.json()["error"]["message"]
    return message


async def test_a_path_name_longer_than_the_file_system_allows(idle: Api, docs_dir: Path) -> None:
    for source in (str(docs_dir / ("x" * 300)), str(docs_dir / ("y" * 300) / "z.pdf")):
        message = await refused(idle, {"kind": "document", "source": source})
        assert "longer than the file system allows" in message


# JSON escapes that decode to lone surrogates: valid JSON, invalid Unicode.
SURROGATE = "\\ud800"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (f'{{"kind": "crawl", "url": "http://127.0.0.1:9/{SURROGATE}"}}', "url"),
        (
            f'{{"kind": "crawl", "url": "http://127.0.0.1:9/", "collection": "a{SURROGATE}"}}',
            "collection",
        ),
        (
            '{"kind": "document", "content_base64": "aGk=", "filename": "n' + SURROGATE + '.md"}',
            "filename",
        ),
        (
            '{"kind": "document", "content_base64": "aGk=", "filename": "n.md", '
            f'"metadata": {{"team": {{"name": "x{SURROGATE}"}}}}}}',
            "metadata.team.name",
        ),
    ],
    ids=["url", "collection", "filename", "metadata"],
)
async def test_lone_surrogates_anywhere_in_a_request(idle: Api, raw: str, field: str) -> None:
    message = await refused(idle, raw)
    assert "not valid Unicode" in message and field in message


async def test_integers_beyond_what_the_job_store_keeps(idle: Api) -> None:
    for query in ("offset=9223372036854775808", "offset=1" + "0" * 30, "limit=9223372036854775808"):
        response = await idle.http.get(f"/jobs?{query}")
        assert response.status_code == 422, (query, response.text)
        assert "less than or equal" in response.json()["error"]["message"]
    body = markdown_doc("# Fine\n\nText.", metadata={"n": 10**400})
    assert "64 bits" in await refused(idle, body)


async def test_an_empty_url_is_refused_by_the_schema(idle: Api) -> None:
    message = await refused(idle, crawl(url=""))
    assert "url" in message


async def test_the_schema_states_the_bounds_it_enforces(idle: Api) -> None:
    schema = (await idle.http.get("/openapi.json")).json()
    params = {
        p["name"]: p["schema"] for p in schema["paths"]["/jobs/{job_id}"]["get"]["parameters"]
    }
    maxima = [s.get("maximum") for s in [params["wait"], *params["wait"].get("anyOf", [])]]
    assert idle.settings.max_wait_seconds in maxima
    listing = {p["name"]: p["schema"] for p in schema["paths"]["/jobs"]["get"]["parameters"]}
    assert listing["offset"]["maximum"] < 2**63 and listing["limit"]["maximum"] == 100
    crawl_schema = schema["components"]["schemas"]["CrawlRequest"]["properties"]
    assert crawl_schema["url"]["minLength"] == 1 and crawl_schema["url"]["maxLength"] == 2048
    over = await idle.http.get(
        f"/jobs/00000000-0000-0000-0000-000000000000?wait={idle.settings.max_wait_seconds + 1}"
    )
    assert over.status_code == 422
