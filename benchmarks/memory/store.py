"""The store passes: the same chunks stored twice through ``qdrant_store``, servers side by side.

Every server of the run is up at once but only one works at a time: each call of
``batch`` chunks goes to one server, then to the next (the order flips every call), so a
busy moment of the shared machine falls on both alike and their rates compare. A second
pass stores the very same chunks into the same collection: ``qdrant_store`` does not skip
known texts (the ingestion jobs do), so the model embeds all of them again and the points
are updated in place (same ids); the launcher's counter of embedded texts shows it.
After each pass, once a server is idle and has settled, its RSS is read.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from typing import Any

from benchmarks.corpus import Document
from benchmarks.harness import QuietWaits, log
from benchmarks.mcp_load import Connected, call, connect, structured
from benchmarks.memory.spec import embedded_texts, memory
from benchmarks.servers import RunningServer, wait_idle

COLLECTION = "memory"
WARMUP_COLLECTION = "warmup"
SAMPLE_EVERY = 8  # calls between two RSS samples during a pass


async def _store(conn: Connected, docs: list[Document], collection: str) -> float:
    start = time.perf_counter()
    result = await call(
        conn.session,
        "qdrant_store",
        {"documents": [d.as_tool_arg() for d in docs], "collection": collection},
    )
    seconds = time.perf_counter() - start
    stored = structured(result).get("stored")
    if stored != len(docs):
        raise RuntimeError(f"qdrant_store stored {stored} of {len(docs)} chunks")
    return seconds


async def _settled(servers: dict[str, RunningServer], settle_s: float) -> dict[str, Any]:
    out = {}
    for name, server in servers.items():
        idle_s = await asyncio.to_thread(wait_idle, server.pid)
        await asyncio.sleep(settle_s)
        out[name] = memory(server) | {"idle_wait_s": idle_s}
    return out


async def _one_pass(
    servers: dict[str, RunningServer],
    conns: dict[str, Connected],
    chunks: list[Document],
    batch: int,
) -> dict[str, dict[str, Any]]:
    names = list(servers)
    seconds = dict.fromkeys(names, 0.0)
    peak = dict.fromkeys(names, 0.0)
    embedded = {name: embedded_texts(server) for name, server in servers.items()}
    for k, start in enumerate(range(0, len(chunks), batch)):
        docs = chunks[start : start + batch]
        for name in names if k % 2 == 0 else names[::-1]:
            seconds[name] += await _store(conns[name], docs, COLLECTION)
        if k % SAMPLE_EVERY == 0:
            for name, server in servers.items():
                peak[name] = max(peak[name], server.rss_kib() / 1024)
    out = {}
    for name, server in servers.items():
        after, before = embedded_texts(server), embedded[name]
        out[name] = {
            "chunks": len(chunks),
            "seconds": seconds[name],
            "chunks_per_s": len(chunks) / seconds[name],
            "texts_embedded": None if after is None or before is None else after - before,
            "tree_peak_sampled_mib": peak[name],
        }
    return out


async def store_passes(
    servers: dict[str, RunningServer],
    chunks: list[Document],
    warmup: list[Document],
    *,
    batch: int,
    passes: int,
    settle_s: float,
    quiet: QuietWaits,
) -> dict[str, Any]:
    """Warm-up (another collection), then ``passes`` stores of ``chunks``; per server:
    RSS at start, after the warm-up and after each pass, and each pass's rate."""
    res: dict[str, Any] = {name: {"passes": []} for name in servers}
    for name, server in servers.items():
        res[name]["rss_start"] = memory(server)
    async with AsyncExitStack() as stack:
        conns = {
            name: await stack.enter_async_context(connect(server.url))
            for name, server in servers.items()
        }
        for name in servers:
            await _store(conns[name], warmup, WARMUP_COLLECTION)
        for name, figures in (await _settled(servers, settle_s)).items():
            res[name]["rss_after_warmup"] = figures
        for n in range(1, passes + 1):
            await asyncio.to_thread(quiet, f"store pass {n}")
            log(f"store pass {n}: {len(chunks)} chunks, {batch} per call, into {list(servers)}")
            figures = await _one_pass(servers, conns, chunks, batch)
            settled = await _settled(servers, settle_s)
            for name in servers:
                res[name]["passes"].append(figures[name] | {"rss_after": settled[name]})
                log(
                    f"  {name}: {figures[name]['chunks_per_s']:.1f} chunks/s, RSS after "
                    f"{settled[name]['tree_mib']:.0f} MiB"
                )
    return res
