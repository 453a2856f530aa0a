"""``ingest_doc`` of a large Markdown document: the orchestrator's path (docling conversion
in a child process, chunks of up to 256 tokens, embedding in the job).

Every embedder's server is up at once; in each round the document is ingested by one
server, then by the next (the order flips every round), each round into a collection of
its own so nothing is skipped as already stored. After each job, once the server is idle,
its RSS is read: the process tree (which includes docling's converter process) and the
main process alone. The faster round's rate is kept (every round is in the JSON).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio

from benchmarks.harness import QuietWaits, log
from benchmarks.ingestion.client import tool, wait_job
from benchmarks.mcp_load import connect
from benchmarks.memory.spec import memory, spec
from benchmarks.servers import RunningServer, wait_idle


async def _ingest(url: str, path: Path, collection: str) -> dict[str, Any]:
    async with connect(url) as conn:
        start = time.perf_counter()
        answer = await tool(
            conn.session, "ingest_doc", {"source": str(path), "collection": collection}
        )
        done = await wait_job(conn.session, answer["job_id"])
    result = done.job.get("result") or {}
    seconds = done.seen_at - start
    chunks = int(result.get("chunks_stored", 0))
    return {
        "status": done.job["status"],
        "error": done.job.get("error"),
        "chunks": chunks,
        "seconds": seconds,
        "chunks_per_s": chunks / seconds if seconds else None,
    }


def ingest_rounds(
    embedders: list[str],
    doc: Path,
    work: Path,
    *,
    rounds: int,
    settle_s: float,
    quiet: QuietWaits,
) -> dict[str, Any]:
    servers = {
        e: RunningServer(spec(e, work / f"data-ingest-{e}", [doc.parent]), work) for e in embedders
    }
    out: dict[str, Any] = {e: {"rounds": []} for e in embedders}
    try:
        for e, server in servers.items():
            server.start()
            time.sleep(settle_s)
            out[e]["rss_before"] = memory(server)
        for n in range(rounds):
            quiet(f"ingest round {n + 1}")
            for e in embedders if n % 2 == 0 else embedders[::-1]:
                server = servers[e]
                got = anyio.run(_ingest, server.url, doc, f"memory-ingest-{n + 1}")
                wait_idle(server.pid)
                time.sleep(settle_s)
                got["rss_after"] = memory(server)
                out[e]["rounds"].append(got)
                log(
                    f"  ingest round {n + 1} ({e}): {got['status']}, {got['chunks']} chunks, "
                    f"RSS after {got['rss_after']['tree_mib']:.0f} MiB "
                    f"(main {got['rss_after']['main_mib']:.0f})"
                )
    finally:
        for server in servers.values():
            server.stop()
    for e in embedders:
        done = out[e]["rounds"]
        if done:
            out[e] |= {
                "chunks": done[0]["chunks"],
                "rss_after": done[0]["rss_after"],
                "rss_after_last": done[-1]["rss_after"],
                "chunks_per_s": max(r["chunks_per_s"] or 0.0 for r in done),
            }
    return out
