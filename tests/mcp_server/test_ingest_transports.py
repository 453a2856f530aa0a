"""The ingestion tools through real server processes and the official ``mcp`` client.

Claude Desktop's path (stdio), LiteLLM's (streamable HTTP), and an MCP server that reaches a
separate ``shield-mcp orchestrator`` process over HTTP.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession

from tests.documents import PHRASES, write_md
from tests.mcp_server.test_http import http_session
from tests.mcp_server.test_stdio import stdio_session
from tests.sites import serve_site
from tests.support import HttpProcess, running_server, server_env

# Server processes that start the embedded orchestrator and convert and crawl for real.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


async def _call(session: ClientSession, tool: str, **args: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, args)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def _finish(session: ClientSession, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = await _call(session, "get_job_status", job_id=job_id, wait_seconds=5)
        if status["status"] in {"succeeded", "failed", "cancelled"}:
            return status
    raise AssertionError(f"job {job_id} did not finish")


async def test_ingest_and_crawl_over_stdio_then_find(data_dir: Path, tmp_path: Path) -> None:
    """Claude Desktop's transport: nothing the crawler or converter prints may reach stdout."""
    docs = tmp_path / "docs"
    docs.mkdir()
    path = write_md(docs / "canyon.md")
    stray: list[Exception] = []
    with serve_site(pages=8, slow_delay=0.2) as site:
        async with stdio_session(
            data_dir,
            stray=stray,
            SHIELD_INGEST_ROOTS=str(docs),
            SHIELD_CRAWL_ALLOW_PRIVATE="true",
        ) as session:
            doc_job = await _call(session, "ingest_doc", source=str(path))
            crawl_job = await _call(session, "crawl_web", url=site.url, max_pages=10)
            for job in (doc_job, crawl_job):
                done = await _finish(session, job["job_id"])
                assert done["status"] == "succeeded", done
            found = await _call(session, "qdrant_find", query=PHRASES["md"], limit=1)
            assert PHRASES["md"] in found["results"][0]["text"]
            found = await _call(session, "qdrant_find", query=site.fact(7), limit=1)
            assert found["results"][0]["metadata"]["source"] == site.page_url(7)
            # Both jobs fed LightRAG too; its answers name the same real sources.
            graph = await _call(session, "lightrag_query", query=site.fact(7), chunk_top_k=3)
            assert graph["chunks"][0]["source"] == site.page_url(7)
            graph = await _call(session, "lightrag_query", query=PHRASES["md"], only_context=True)
            assert graph["chunks"][0]["source"] == str(path.resolve())
    assert stray == []


async def test_ingest_over_streamable_http_then_find(data_dir: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    path = write_md(docs / "canyon.md")
    with running_server(data_dir, tmp_path / "server.log", SHIELD_INGEST_ROOTS=str(docs)) as srv:
        async with http_session(srv.url) as session:
            job = await _call(session, "ingest_doc", source=str(path))
            assert job["status"] == "queued"
            done = await _finish(session, job["job_id"])
            assert done["status"] == "succeeded", done
            found = await _call(session, "qdrant_find", query=PHRASES["md"], limit=1)
            assert PHRASES["md"] in found["results"][0]["text"]
            graph = await _call(session, "lightrag_query", query=PHRASES["md"], mode="naive")
            assert PHRASES["md"] in graph["chunks"][0]["text"]
            assert graph["references"][0]["source"] == str(path.resolve())
            refused = await session.call_tool("lightrag_query", {"query": "who?", "mode": "global"})
            assert refused.is_error and "SHIELD_LLM" in str(refused.content)
        # The job API is served on the same port: track_url and events_url work over HTTP.
        tracked = httpx.get(f"{srv.url}{job['track_url']}")
        assert tracked.status_code == 200 and tracked.json()["status"] == "succeeded"
        events = httpx.get(f"{srv.url}{job['events_url']}", timeout=30)
        assert "event: job" in events.text and '"succeeded"' in events.text
        # ... but not to a page that rebound its own name to 127.0.0.1.
        rebound = httpx.get(
            f"{srv.url}{job['track_url']}", headers={"Host": f"evil.example:{srv.port}"}
        )
        assert rebound.status_code == 403
        metrics = httpx.get(f"{srv.url}/metrics").text
        assert 'tool_calls_total{status="success",tool="ingest_doc"} 1.0' in metrics
        assert 'api_requests_total{endpoint="/jobs/{job_id}"' in metrics
        assert 'lightrag_operations_total{operation="query_naive",status="ok"} 1.0' in metrics
        assert 'lightrag_operations_total{operation="insert",status="ok"} 1.0' in metrics


async def test_mcp_server_drives_a_separate_orchestrator(tmp_path: Path) -> None:
    """SHIELD_ORCHESTRATOR_URL: jobs go over real HTTP to another process."""
    docs = tmp_path / "docs"
    docs.mkdir()
    path = write_md(docs / "canyon.md")
    orchestrator = HttpProcess(
        lambda port: ["orchestrator", "--host", "127.0.0.1", "--port", str(port)],
        server_env(
            tmp_path / "orchestrator-data",
            SHIELD_INGEST_ROOTS=str(docs),
            SHIELD_ORCHESTRATOR_TOKEN="orch-token",
        ),
        tmp_path / "orchestrator.log",
    )
    try:
        orchestrator.wait_ready(timeout=60)
        url = orchestrator.url
        with running_server(
            tmp_path / "mcp-data",
            tmp_path / "server.log",
            SHIELD_ORCHESTRATOR_URL=url,
            SHIELD_ORCHESTRATOR_TOKEN="orch-token",
        ) as srv:
            async with http_session(srv.url) as session:
                job = await _call(session, "ingest_doc", source=str(path))
                done = await _finish(session, job["job_id"])
                assert done["status"] == "succeeded", done
                assert done["result"]["chunks_stored"] >= 1
                # The query travels to the orchestrator process, which has LightRAG.
                graph = await _call(session, "lightrag_query", query=PHRASES["md"])
                assert graph["chunks"][0]["source"] == str(path.resolve())
        # The orchestrator's own API refuses callers without its token.
        assert httpx.get(f"{url}/jobs/{job['job_id']}").status_code == 401
    finally:
        orchestrator.stop()
