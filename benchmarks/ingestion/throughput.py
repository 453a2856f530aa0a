"""Ingestion throughput through the MCP server, from submit to searchable.

The clock starts just before the first ``crawl_web`` / ``ingest_doc`` call and stops when
the last job is seen ``succeeded`` (long-poll on ``get_job_status``): by then its chunks
are in the vector store, so ``qdrant_find`` returns them. One search per phase checks
that (untimed).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio

from benchmarks.ingestion.client import Finished, tool, wait_all
from benchmarks.mcp_load import connect

SITE_COLLECTION = "bench-site"
DOCS_COLLECTION = "bench-docs"


def _totals(finished: list[Finished], started: float) -> dict[str, Any]:
    ok = [f.job for f in finished if f.job["status"] == "succeeded"]
    bad = [f.job for f in finished if f.job["status"] != "succeeded"]
    results = [j.get("result") or {} for j in ok]
    seconds = max(f.seen_at for f in finished) - started
    chunks = sum(int(r.get("chunks_stored", 0)) for r in results)
    return {
        "jobs": len(finished),
        "succeeded": len(ok),
        "failed": [{"status": j["status"], "error": j.get("error")} for j in bad][:10],
        "pages": sum(int(r.get("pages", 0)) for r in results),
        "documents": sum(int(r.get("documents", 0)) for r in results),
        "chunks": chunks,
        "chunks_skipped_unchanged": sum(int(r.get("chunks_skipped_unchanged", 0)) for r in results),
        "converters": sorted({str(r.get("converter")) for r in results if r.get("converter")}),
        "failed_pages": sum(len(r.get("failed_pages") or []) for r in results),
        "seconds": seconds,
    }


async def warm_up(url: str, site_url: str, warm_docs: list[Path]) -> float:
    """Every path once, untimed and in a collection of its own: the first job pays for
    starting the orchestrator, docling's converter process and crawl4ai."""
    start = time.perf_counter()
    async with connect(url) as conn:
        ids = [
            (
                await tool(
                    conn.session,
                    "crawl_web",
                    {"url": site_url, "max_pages": 2, "max_depth": 1, "collection": "warmup"},
                )
            )["job_id"]
        ]
        for path in warm_docs:
            answer = await tool(
                conn.session, "ingest_doc", {"source": str(path), "collection": "warmup"}
            )
            ids.append(answer["job_id"])
        await wait_all(conn.session, ids)
    return time.perf_counter() - start


async def _searchable(session: Any, query: str, collection: str, expect: str) -> bool:
    found = await tool(
        session, "qdrant_find", {"query": query, "collection": collection, "limit": 5}
    )
    return any(expect in str(hit.get("text", "")) for hit in found.get("results", []))


async def crawl_site(
    url: str, site_url: str, *, max_pages: int, max_depth: int, probe: tuple[str, str]
) -> dict[str, Any]:
    """One ``crawl_web`` job over the whole site."""
    async with connect(url) as conn:
        started = time.perf_counter()
        answer = await tool(
            conn.session,
            "crawl_web",
            {
                "url": site_url,
                "max_pages": max_pages,
                "max_depth": max_depth,
                "collection": SITE_COLLECTION,
            },
        )
        accepted_ms = (time.perf_counter() - started) * 1000
        finished = await wait_all(conn.session, [answer["job_id"]])
        out = _totals(finished, started)
        out["accept_ms"] = accepted_ms
        out["searchable"] = await _searchable(conn.session, probe[0], SITE_COLLECTION, probe[1])
    return out


async def ingest_folder(url: str, paths: list[Path], *, probe: tuple[str, str]) -> dict[str, Any]:
    """One ``ingest_doc`` job per file, all submitted at once (concurrent calls, one session)."""
    async with connect(url) as conn:
        ids: list[str] = [""] * len(paths)

        async def submit(n: int, path: Path) -> None:
            answer = await tool(
                conn.session, "ingest_doc", {"source": str(path), "collection": DOCS_COLLECTION}
            )
            ids[n] = answer["job_id"]

        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for n, path in enumerate(paths):
                group.start_soon(submit, n, path)
        submitted_s = time.perf_counter() - started
        finished = await wait_all(conn.session, ids)
        out = _totals(finished, started)
        out["submit_all_s"] = submitted_s
        out["searchable"] = await _searchable(conn.session, probe[0], DOCS_COLLECTION, probe[1])
    return out
