"""POST /ingest-async: 202 at once, idempotency, and refusals a person can act on."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from knowledge.embeddings.local import LocalEmbedder
from orchestrator.settings import OrchestratorSettings
from tests.orchestrator.http.conftest import (
    SITE,
    Api,
    api_for,
    crawl,
    error_of,
    make_settings,
    markdown_doc,
)


async def test_accepts_with_202_location_and_tracking_urls(idle: Api) -> None:
    response = await idle.http.post("/ingest-async", json=crawl(max_pages=3))
    assert response.status_code == 202
    body = response.json()
    job_id = body["job_id"]
    assert body == {
        "job_id": job_id,
        "status": "queued",
        "track_url": f"/jobs/{job_id}",
        "events_url": f"/jobs/{job_id}/events",
        "reused": False,
    }
    assert response.headers["location"] == f"/jobs/{job_id}"
    # The job is stored as accepted: the Location answers with it.
    job = (await idle.http.get(response.headers["location"])).json()
    assert job["status"] == "queued"
    assert job["kind"] == "crawl"
    assert job["request"]["max_pages"] == 3


async def test_document_upload_is_accepted_without_its_bytes_in_the_record(idle: Api) -> None:
    response = await idle.http.post("/ingest-async", json=markdown_doc("# Title\n\nSome text."))
    assert response.status_code == 202
    job = (await idle.http.get(response.json()["track_url"])).json()
    assert job["kind"] == "document"
    assert "content_base64" not in job["request"]


async def test_a_repeated_idempotency_key_returns_the_same_job_with_200(idle: Api) -> None:
    headers = {"Idempotency-Key": "crawl-example-1"}
    first = await idle.http.post("/ingest-async", json=crawl(), headers=headers)
    again = await idle.http.post("/ingest-async", json=crawl(), headers=headers)
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == {**first.json(), "reused": True}
    assert again.headers["location"] == first.headers["location"]
    listed = (await idle.http.get("/jobs")).json()["jobs"]
    assert [job["job_id"] for job in listed] == [first.json()["job_id"]]
    # Another key is new work, even for the same request: the caller keeps its own
    # idempotency.
    other = await idle.http.post("/ingest-async", json=crawl(), headers={"Idempotency-Key": "2"})
    assert other.status_code == 202
    assert other.json()["job_id"] != first.json()["job_id"]


async def test_the_same_request_while_its_job_is_queued_is_that_job_with_200(idle: Api) -> None:
    first = await idle.http.post("/ingest-async", json=crawl(max_pages=2))
    retried = await idle.http.post("/ingest-async", json=crawl(max_pages=2))
    assert (first.status_code, retried.status_code) == (202, 200)
    assert retried.json() == {**first.json(), "reused": True}
    other = await idle.http.post("/ingest-async", json=crawl(max_pages=3))
    assert other.status_code == 202 and other.json()["job_id"] != first.json()["job_id"]
    assert len((await idle.http.get("/jobs")).json()["jobs"]) == 2


async def test_an_idempotency_key_reused_for_other_work_is_a_conflict(idle: Api) -> None:
    headers = {"Idempotency-Key": "k-42"}
    await idle.http.post("/ingest-async", json=crawl(), headers=headers)
    response = await idle.http.post("/ingest-async", json=crawl(f"{SITE}/other"), headers=headers)
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "conflict"
    assert "k-42" in error["message"]


async def test_an_overlong_idempotency_key_is_refused(idle: Api) -> None:
    response = await idle.http.post(
        "/ingest-async", json=crawl(), headers={"Idempotency-Key": "k" * 201}
    )
    assert response.status_code == 422
    assert "Idempotency-Key" in error_of(response)["message"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"kind": "sitemap", "url": "https://example.org"}, "kind: must be 'crawl' or 'document'"),
        ({"url": "https://example.org"}, "kind: missing"),
        ({"kind": "crawl"}, "url: Field required"),
        (crawl(max_pages=0), "max_pages: Input should be greater than or equal to 1"),
        (crawl(max_depth=11), "max_depth: Input should be less than or equal to 10"),
        (crawl("ftp://example.org/x"), "url: url must be an http:// or https:// URL"),
        (crawl(colour="red"), "colour: unknown field"),
        ({"kind": "document"}, "give exactly one of 'source' (path or URL) or 'content_base64'"),
        ({"kind": "document", "content_base64": "aGk="}, "'filename' is required"),
        (["not", "an", "object"], "request body: must be a JSON object"),
    ],
)
async def test_schema_refusals_name_the_field_and_the_rule(
    idle: Api, body: object, expected: str
) -> None:
    response = await idle.http.post("/ingest-async", json=body)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_input"
    assert expected in error["message"], error["message"]
    assert "body." not in error["message"]  # pydantic's locations are rewritten for people


async def test_two_bad_fields_are_both_reported(idle: Api) -> None:
    response = await idle.http.post("/ingest-async", json=crawl(max_pages=0, max_depth=-1))
    message = error_of(response)["message"]
    assert "max_pages:" in message
    assert "max_depth:" in message


async def test_malformed_json_and_a_missing_body_are_422_with_a_clear_message(idle: Api) -> None:
    response = await idle.http.post(
        "/ingest-async", content=b'{"kind": "crawl",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "not valid JSON" in error_of(response)["message"]
    response = await idle.http.post("/ingest-async")
    assert response.status_code == 422
    assert "request body: missing" in error_of(response)["message"]


async def test_the_pipelines_checks_refuse_bad_base64_and_paths_outside_the_roots(
    idle: Api, tmp_path: Path
) -> None:
    bad = {"kind": "document", "content_base64": "%%% not base64 %%%", "filename": "a.md"}
    response = await idle.http.post("/ingest-async", json=bad)
    assert response.status_code == 422, response.text
    assert "base64" in error_of(response)["message"].lower()

    outside = tmp_path / "outside.md"
    outside.write_text("# secret\n")
    response = await idle.http.post(
        "/ingest-async", json={"kind": "document", "source": str(outside)}
    )
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "invalid_input"
    assert "SHIELD_INGEST_ROOTS" in error["message"]
    # Nothing refused was stored.
    assert (await idle.http.get("/jobs")).json()["jobs"] == []


@pytest.fixture
async def small_upload_api(
    data_dir: Path, docs_dir: Path, local_embedder: LocalEmbedder
) -> AsyncIterator[Api]:
    settings: OrchestratorSettings = make_settings(data_dir, docs_dir, max_upload_bytes=1000)
    async with api_for(settings, local_embedder, workers=False) as api:
        yield api


async def test_an_oversize_body_is_413_before_it_is_parsed(small_upload_api: Api) -> None:
    huge = base64.b64encode(b"x" * 400_000).decode()
    body = {"kind": "document", "content_base64": huge, "filename": "big.txt"}
    response = await small_upload_api.http.post("/ingest-async", json=body)
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "request_too_large"
    assert "bytes" in error["message"]


async def test_an_oversize_chunked_body_without_a_length_is_413(small_upload_api: Api) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(50):
            yield b"x" * 10_000

    response = await small_upload_api.http.post(
        "/ingest-async", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"


async def test_a_small_chunked_body_still_reaches_the_route(small_upload_api: Api) -> None:
    payload = b'{"kind": "crawl", "url": "http://127.0.0.1:9/"}'

    async def chunks() -> AsyncIterator[bytes]:
        yield payload[:10]
        yield payload[10:]

    response = await small_upload_api.http.post(
        "/ingest-async", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 202, response.text


async def test_an_upload_over_the_decoded_limit_is_refused_by_the_pipeline(
    small_upload_api: Api,
) -> None:
    # Small enough to pass the body cap, larger than SHIELD_MAX_UPLOAD_BYTES once decoded.
    body = markdown_doc("x" * 5000)
    response = await small_upload_api.http.post("/ingest-async", json=body)
    assert response.status_code in (413, 422), response.text
    assert error_of(response)["code"] in ("invalid_input", "request_too_large")
