"""crawl_web, ingest_doc and get_job_status end to end through an MCP client.

The server runs the embedded default: the orchestrator, its SQLite job store, the in-process
queue and workers, Docling and Crawl4AI all in this process, reached through the same HTTP
API a separate orchestrator would serve.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import uuid
from pathlib import Path

import pytest
from fastmcp import Client

from tests.documents import PHRASES, write_all, write_png_as
from tests.mcp_server.jobs_support import call, error_of, wait_for_job
from tests.sites import serve_site

PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q"]

# Through ingest_client: each starts an orchestrator whose docling child takes seconds.
END_TO_END = pytest.mark.slow


@END_TO_END
async def test_each_document_format_becomes_searchable(
    ingest_client: Client, docs_dir: Path
) -> None:
    files = write_all(docs_dir)
    accepted = {
        kind: await call(ingest_client, "ingest_doc", source=str(path))
        for kind, path in files.items()
    }
    assert all(a["status"] == "queued" and a["job_id"] for a in accepted.values())
    for kind, job in accepted.items():
        status = await wait_for_job(ingest_client, job["job_id"])
        assert status["status"] == "succeeded", (kind, status)
        assert status["result"]["documents"] == 1
        assert status["result"]["chunks_stored"] >= 1
    for kind, path in files.items():
        found = await call(ingest_client, "qdrant_find", query=PHRASES[kind], limit=3)
        best = found["results"][0]
        assert PHRASES[kind] in best["text"], (kind, best)
        assert best["metadata"]["source"] == str(path.resolve())


@END_TO_END
async def test_pdf_result_names_the_pipeline_that_ran(
    ingest_client: Client, docs_dir: Path
) -> None:
    path = write_all(docs_dir)["pdf"]
    job = await call(ingest_client, "ingest_doc", source=str(path))
    status = await wait_for_job(ingest_client, job["job_id"])
    # No layout weights can be downloaded here, so the model-free native pipeline runs.
    assert status["result"]["converter"] == "docling:native-pdf"


@END_TO_END
async def test_uploaded_content_is_ingested_and_reingesting_skips_it(
    ingest_client: Client, tmp_path: Path
) -> None:
    path = write_all(tmp_path / "upload")["docx"]
    content = base64.b64encode(path.read_bytes()).decode()
    first = await call(ingest_client, "ingest_doc", content_base64=content, filename="notes.docx")
    done = await wait_for_job(ingest_client, first["job_id"])
    assert done["status"] == "succeeded", done
    stored = done["result"]["chunks_stored"]
    again = await call(ingest_client, "ingest_doc", content_base64=content, filename="notes.docx")
    redone = await wait_for_job(ingest_client, again["job_id"])
    assert redone["result"]["chunks_stored"] == 0
    assert redone["result"]["chunks_skipped_unchanged"] == stored
    found = await call(ingest_client, "qdrant_find", query=PHRASES["docx"], limit=1)
    assert PHRASES["docx"] in found["results"][0]["text"]


@END_TO_END
async def test_a_retried_call_gets_the_running_job_not_a_second_one(
    ingest_client: Client, tmp_path: Path
) -> None:
    path = write_all(tmp_path / "retry")["docx"]
    content = base64.b64encode(path.read_bytes()).decode()
    # An assistant whose first call timed out sends it again, maybe twice, at once.
    answers = await asyncio.gather(
        *(
            call(ingest_client, "ingest_doc", content_base64=content, filename="retry.docx")
            for _ in range(3)
        )
    )
    assert len({a["job_id"] for a in answers}) == 1
    assert sorted(a["reused"] for a in answers) == [False, True, True]
    reused = next(a for a in answers if a["reused"])
    assert "no second job was started" in reused["hint"]
    done = await wait_for_job(ingest_client, answers[0]["job_id"])
    assert done["status"] == "succeeded", done
    found = await call(ingest_client, "qdrant_find", query=PHRASES["docx"], limit=5)
    assert sum(PHRASES["docx"] in hit["text"] for hit in found["results"]) == 1
    # Once it finished, the same request is new work again (it re-checks the source).
    later = await call(ingest_client, "ingest_doc", content_base64=content, filename="retry.docx")
    assert not later["reused"] and later["job_id"] != answers[0]["job_id"]
    await wait_for_job(ingest_client, later["job_id"])


@END_TO_END
async def test_a_mislabelled_file_fails_its_job_and_the_next_one_succeeds(
    ingest_client: Client, docs_dir: Path
) -> None:
    bad = write_png_as(docs_dir / "report.pdf")
    failed = await wait_for_job(
        ingest_client, (await call(ingest_client, "ingest_doc", source=str(bad)))["job_id"]
    )
    assert failed["status"] == "failed"
    assert "report.pdf" in failed["error"]["message"]
    good = write_all(docs_dir)["md"]
    ok = await wait_for_job(
        ingest_client, (await call(ingest_client, "ingest_doc", source=str(good)))["job_id"]
    )
    assert ok["status"] == "succeeded", ok


@END_TO_END
async def test_crawl_reaches_a_deep_page(ingest_client: Client) -> None:
    with serve_site(pages=30, slow_delay=0.2) as site:
        job = await call(ingest_client, "crawl_web", url=site.url, max_pages=40, max_depth=6)
        assert job["status"] == "queued"
        status = await wait_for_job(ingest_client, job["job_id"])
        assert status["status"] == "succeeded", status
        result = status["result"]
        assert result["pages"] >= 30
        assert any("404" in f["reason"] for f in result["failed_pages"])
        deep = 30
        assert site.depth(deep) == 3
        found = await call(ingest_client, "qdrant_find", query=site.fact(deep), limit=3)
        assert found["results"][0]["metadata"]["source"] == site.page_url(deep)
        assert not site.offsite_paths  # the off-site link was never followed


async def test_refusals_are_tool_errors_that_say_what_to_do(
    data_dir: Path, docs_dir: Path, tmp_path: Path
) -> None:
    from tests.mcp_server.servers import shield_server

    outside = tmp_path / "secret.txt"
    outside.write_text("not for the assistant")
    escape = docs_dir / "link.txt"
    escape.symlink_to(outside)
    # The safe defaults: no private addresses.
    settings = dict(data_dir=data_dir, ingest_roots=[docs_dir])
    async with Client(shield_server(**settings)) as client:
        message = await error_of(client, "crawl_web", url="http://127.0.0.1:9/")
        assert "SHIELD_CRAWL_ALLOW_PRIVATE" in message
        message = await error_of(client, "ingest_doc", source="http://localhost:9/a.pdf")
        assert "SHIELD_CRAWL_ALLOW_PRIVATE" in message
        for path in (outside, escape):
            message = await error_of(client, "ingest_doc", source=str(path))
            assert "SHIELD_INGEST_ROOTS" in message, message
        message = await error_of(client, "ingest_doc")
        assert "source" in message and "content_base64" in message
        message = await error_of(client, "ingest_doc", content_base64="%%%", filename="a.txt")
        assert "base64" in message
        message = await error_of(client, "crawl_web", url="ftp://example.com/")
        assert "http" in message
        message = await error_of(client, "crawl_web", url="https://example.com/", max_pages=0)
        assert "max_pages" in message
        message = await error_of(client, "get_job_status", job_id="no-such-job")
        assert "no-such-job" in message or "not found" in message.lower()
        listed = await client.call_tool("get_job_status", {"job_id": "x"}, raise_on_error=False)
        assert listed.is_error  # nothing was queued by any refusal above


async def test_orchestrator_down_is_a_clear_error_then_fails_fast(
    data_dir: Path, dead_port: int
) -> None:
    from tests.mcp_server.servers import shield_server

    settings = dict(
        data_dir=data_dir,
        orchestrator_url=f"http://127.0.0.1:{dead_port}",
        breaker_failure_threshold=2,
        breaker_recovery_seconds=120,
        orchestrator_timeout=2,
    )
    async with Client(shield_server(**settings)) as client:
        for _ in range(2):
            message = await error_of(client, "crawl_web", url="https://example.com/")
            assert "orchestrator" in message.lower()
        message = await error_of(client, "get_job_status", job_id=str(uuid.uuid4()))
        assert "open" in message.lower() and "retry in" in message.lower(), message


@pytest.mark.postgres
async def test_a_job_store_down_at_boot_is_retried_by_a_later_call(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL not there when the server starts: the tools say so, then recover."""
    from mcp_server import orchestrator_link
    from tests.mcp_server.servers import shield_server

    monkeypatch.setattr(orchestrator_link, "RESTART_AFTER_SECONDS", 0.0)
    database = f"shield_late_{uuid.uuid4().hex[:10]}"
    settings = dict(
        data_dir=data_dir,
        database_url=f"postgresql://postgres@127.0.0.1:5432/{database}",
    )
    try:
        async with Client(shield_server(**settings)) as client:
            message = await error_of(client, "get_job_status", job_id=str(uuid.uuid4()))
            assert "cannot open the job store" in message and "tries again" in message
            assert database in message  # names what to fix
            subprocess.run([*PSQL, "-c", f'CREATE DATABASE "{database}"'], check=True)
            message = await error_of(client, "get_job_status", job_id=str(uuid.uuid4()))
            assert "No job with id" in message  # the orchestrator answered this time
    finally:
        subprocess.run([*PSQL, "-c", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'])
