"""Error messages that point at the real problem (regressions of misleading ones).

- ``get_job_status`` with job id ``..`` answered "No such route: GET /", and with
  ``<id>/events`` blamed SHIELD_ORCHESTRATOR_URL where nothing is configured;
- a search of a missing collection suggested "the default collection 'shield'" when
  that was the missing one;
- an upload named ``.pdf`` holding text failed with "File format not allowed: .pdf.md".
"""

from __future__ import annotations

import base64
import uuid

import pytest
from fastmcp import Client

from tests.mcp_server.jobs_support import call, error_of, wait_for_job


@pytest.mark.parametrize(
    "job_id",
    ["..", "0b8e5c1e-3f5a-4d7e-9a61-2f4c9d0e7b13/events", "../../ready", "%2e%2e", "x" * 50],
)
async def test_a_job_id_that_is_not_one_is_named_as_such(
    ingest_client: Client, job_id: str
) -> None:
    message = await error_of(ingest_client, "get_job_status", job_id=job_id)
    assert "is not a job id" in message and "crawl_web or ingest_doc returned" in message
    assert "route" not in message and "SHIELD_ORCHESTRATOR_URL" not in message


async def test_an_unknown_but_well_formed_job_id_is_not_found(ingest_client: Client) -> None:
    message = await error_of(ingest_client, "get_job_status", job_id=str(uuid.uuid4()))
    assert "No job with id" in message


async def test_a_missing_collection_suggests_the_default_only_when_it_exists(
    ingest_client: Client,
) -> None:
    default_missing = await error_of(ingest_client, "qdrant_find", query="x")
    assert "Collection 'shield' does not exist yet" in default_missing
    assert "default collection" not in default_missing
    other = await error_of(ingest_client, "qdrant_find", query="x", collection="notes")
    assert "default collection" not in other  # it does not exist either
    await call(ingest_client, "qdrant_store", text="Something to find.")
    other = await error_of(ingest_client, "qdrant_find", query="x", collection="notes")
    assert "Collection 'notes' does not exist yet" in other
    assert "search the default collection 'shield'" in other


@pytest.mark.slow  # two conversions
async def test_an_upload_named_only_by_its_extension_is_judged_by_that(
    ingest_client: Client,
) -> None:
    text = base64.b64encode(b"# Notes\n\nPlain words, not a PDF.").decode()
    job = await call(ingest_client, "ingest_doc", content_base64=text, filename=".pdf")
    failed = await wait_for_job(ingest_client, job["job_id"])
    assert failed["status"] == "failed"
    assert "'.pdf' is text, not a PDF file as its name says" in failed["error"]["message"]
    # Named only ".md", it is Markdown and converts.
    job = await call(ingest_client, "ingest_doc", content_base64=text, filename=".md")
    done = await wait_for_job(ingest_client, job["job_id"])
    assert done["status"] == "succeeded", done
    assert done["result"]["converter"] == "docling:md"
