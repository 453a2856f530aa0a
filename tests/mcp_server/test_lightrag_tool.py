"""lightrag_query end to end through an MCP client, with no LLM: the embedded default.

Real documents and a real crawled site go in through ingest_doc and crawl_web; their
chunks reach LightRAG's workspace with no graph (no LLM can run here), and naive-mode
retrieval answers with the real sources (path or URL), not LightRAG's file names.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError

from tests.documents import PHRASES, write_all
from tests.mcp_server.jobs_support import call, wait_for_job
from tests.support import serve_pages

pytestmark = pytest.mark.slow  # an orchestrator with its docling child per test


async def _ingest(client: Client, **arguments: object) -> dict[str, object]:
    tool = "crawl_web" if "url" in arguments else "ingest_doc"
    job = await call(client, tool, **arguments)
    done = await wait_for_job(client, job["job_id"])
    assert done["status"] == "succeeded", done.get("error")
    return done["result"]


async def test_documents_answer_naive_queries_with_their_real_paths(
    ingest_client: Client, docs_dir: Path
) -> None:
    files = write_all(docs_dir)
    for kind in ("docx", "pdf", "md"):
        result = await _ingest(ingest_client, source=str(files[kind]))
        lightrag = result["lightrag"]
        assert lightrag["status"] == "indexed", lightrag
        assert lightrag["documents_indexed"] == 1 and lightrag["graph"] is False
    for kind in ("docx", "pdf", "md"):
        answer = await call(
            ingest_client, "lightrag_query", query=PHRASES[kind], only_context=True, chunk_top_k=3
        )
        assert answer["mode"] == "naive"
        assert answer.get("answer") is None  # no LLM on this server
        best = answer["chunks"][0]
        assert PHRASES[kind] in best["text"], (kind, answer["chunks"])
        assert best["source"] == str(files[kind].resolve())
        sources = [ref["source"] for ref in answer["references"]]
        assert str(files[kind].resolve()) in sources
    pdf = await call(ingest_client, "lightrag_query", query=PHRASES["pdf"], chunk_top_k=1)
    assert pdf["chunks"][0]["page"] is not None  # pages come from the registry


async def test_pages_with_the_same_file_name_on_different_paths_both_come_back(
    ingest_client: Client,
) -> None:
    filler = "<p>" + "This page is part of the operations handbook of the team. " * 8 + "</p>"
    pages = {
        "/": '<h1>Gateways</h1><a href="/a/index.html">Amber</a> <a href="/b/index.html">'
        "Cobalt</a>" + filler,
        "/a/index.html": "<h1>Amber</h1><p>The amber gateway routes billing traffic through "
        "Oslo.</p>" + filler,
        "/b/index.html": "<h1>Cobalt</h1><p>The cobalt gateway routes billing traffic through "
        "Lima.</p>" + filler,
    }
    with serve_pages(pages) as base:
        result = await _ingest(ingest_client, url=base + "/", max_pages=5)
    assert result["lightrag"]["documents_indexed"] == 3, result["lightrag"]
    answer = await call(
        ingest_client, "lightrag_query", query="which gateway routes billing traffic?"
    )
    sources = {chunk["source"] for chunk in answer["chunks"]}
    assert {base + "/a/index.html", base + "/b/index.html"} <= sources, answer["chunks"]


async def test_graph_modes_without_an_llm_or_keywords_say_what_is_needed(
    ingest_client: Client,
) -> None:
    with pytest.raises(ToolError) as raised:
        await ingest_client.call_tool("lightrag_query", {"query": "who?", "mode": "local"})
    message = str(raised.value)
    assert "SHIELD_LLM" in message and "keywords" in message and "naive" in message


async def test_two_uploads_with_one_name_stay_two_documents(ingest_client: Client) -> None:
    """An upload's name is not one document over time: Qdrant keeps both, so must LightRAG."""
    texts = {
        "amber": "# Report\n\nThe amber team migrated the ledger to the new cluster.",
        "cobalt": "# Report\n\nThe cobalt team retired the legacy ticket queue.",
    }
    for text in texts.values():
        upload = base64.b64encode(text.encode()).decode()
        result = await _ingest(ingest_client, content_base64=upload, filename="report.md")
        assert result["lightrag"]["documents_indexed"] == 1
    for team, text in texts.items():
        answer = await call(
            ingest_client, "lightrag_query", query=f"what did the {team} team do?", chunk_top_k=5
        )
        assert any(text.split("\n\n")[1] in chunk["text"] for chunk in answer["chunks"]), team
        assert {c["source"] for c in answer["chunks"]} == {"upload:report.md"}
