"""The schema states the bounds the API enforces, and the answers schemathesis found wrong.

Regressions: OPTIONS on /jobs/{job_id} answered 405 with ``Allow: GET`` (DELETE is served
there too), and a body that is not UTF-8 answered an undocumented 400 "There was an error
parsing the body".
"""

from __future__ import annotations

import re
from typing import Any

from tests.orchestrator.http.conftest import Api, crawl, error_of


async def schema_of(api: Api) -> dict[str, Any]:
    schema: dict[str, Any] = (await api.http.get("/openapi.json")).json()
    return schema


def props(schema: dict[str, Any], model: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["components"]["schemas"][model]["properties"]
    return found


def string_branch(prop: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in prop.get("anyOf", [prop]) if b.get("type") == "string")


async def test_405_allows_every_method_of_the_path(idle: Api) -> None:
    response = await idle.http.request("OPTIONS", "/jobs/some-job")
    assert response.status_code == 405
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert {"GET", "DELETE"} <= allowed
    assert error_of(response)["code"] == "method_not_allowed"


async def test_a_body_that_is_not_utf8_is_a_422_naming_why(idle: Api) -> None:
    response = await idle.http.post(
        "/ingest-async", content=b'"\xff\xfe\x12', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert "not UTF-8" in error_of(response)["message"]


async def test_the_servers_own_limits_are_in_its_schema(idle: Api) -> None:
    schema = await schema_of(idle)
    settings = idle.settings
    assert props(schema, "CrawlRequest")["max_pages"]["maximum"] == settings.crawl_max_pages
    wait = next(
        p for p in schema["paths"]["/jobs/{job_id}"]["get"]["parameters"] if p["name"] == "wait"
    )
    assert string_or_number_max(wait["schema"]) == settings.max_wait_seconds
    content = props(schema, "DocumentRequest")["content_base64"]
    assert str(settings.max_upload_bytes) in content["description"]
    for model in ("CrawlRequest", "DocumentRequest", "RebuildRequest"):
        pattern = string_branch(props(schema, model)["collection"])["pattern"]
        # The embedded store: lowercase names only.
        assert re.search(pattern, "team-notes") and not re.search(pattern, "Team")
    names = props(schema, "CrawlRequest")["metadata"]["propertyNames"]
    assert "source" in names["not"]["enum"]
    assert props(schema, "RebuildRequest")["metadata"]["maxProperties"] == 0


def string_or_number_max(schema: dict[str, Any]) -> float:
    branch = next(b for b in [schema, *schema.get("anyOf", [])] if "maximum" in b)
    return float(branch["maximum"])


async def test_what_the_schema_refuses_the_server_refuses(idle: Api) -> None:
    schema = await schema_of(idle)
    url = props(schema, "CrawlRequest")["url"]["pattern"]
    for bad in ("ftp://example.com/", "example.com", "http:///path"):
        assert not re.search(url, bad) or bad == "http:///path"
        response = await idle.http.post("/ingest-async", json=crawl(bad))
        assert response.status_code == 422, (bad, response.text)
    key = next(
        p
        for p in schema["paths"]["/ingest-async"]["post"]["parameters"]
        if p["name"].lower() == "idempotency-key"
    )
    pattern = string_branch(key["schema"])["pattern"]
    assert not re.search(pattern, "a\u00a0b")
    response = await idle.http.post(
        "/ingest-async", json=crawl(), headers={b"Idempotency-Key": "a\u00a0b".encode("latin-1")}
    )
    assert response.status_code == 422, response.text
    assert "Idempotency-Key" in error_of(response)["message"]
