"""Re-ingesting a document with other metadata stores that metadata.

Regression: the second job reported every chunk "skipped as unchanged" (same text, same
source) and a filter on the new value found nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastmcp import Client

from tests.documents import PHRASES, write_md
from tests.mcp_server.jobs_support import call, wait_for_job

pytestmark = pytest.mark.slow  # three ingestion jobs through the embedded orchestrator


async def ingest(client: Client, path: Path, team: str) -> dict[str, int]:
    job = await call(client, "ingest_doc", source=str(path), metadata={"team": team})
    done = await wait_for_job(client, job["job_id"])
    assert done["status"] == "succeeded", done
    result: dict[str, int] = done["result"]
    return result


async def found_for(client: Client, team: str) -> list[str]:
    found = await call(client, "qdrant_find", query=PHRASES["md"], filter={"team": team})
    return [r["text"] for r in found["results"]]


async def test_new_metadata_replaces_the_old_and_unchanged_runs_still_skip(
    ingest_client: Client, docs_dir: Path
) -> None:
    path = write_md(docs_dir / "handbook.md")
    first = await ingest(ingest_client, path, "ops")
    assert first["chunks_stored"] > 0
    assert any(PHRASES["md"] in text for text in await found_for(ingest_client, "ops"))

    second = await ingest(ingest_client, path, "dev")
    # The same texts: not embedded again, their metadata rewritten in place.
    assert second["chunks_stored"] == 0
    assert second["chunks_skipped_unchanged"] == first["chunks_stored"]
    assert second["chunks_metadata_updated"] == first["chunks_stored"]
    assert any(PHRASES["md"] in text for text in await found_for(ingest_client, "dev"))
    assert await found_for(ingest_client, "ops") == []  # the same passages, updated

    # The same metadata again: nothing to store (a new job id is not a change).
    third = await ingest(ingest_client, path, "dev")
    assert third["chunks_stored"] == 0
    assert third["chunks_skipped_unchanged"] == first["chunks_stored"]
    assert third["chunks_metadata_updated"] == 0
