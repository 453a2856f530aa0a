"""How each server's tools are called and timed: find, store, and top-hit checks.

shield-mcp, the peer (mcp-server-qdrant) and the no-op baseline take different tool names
and arguments; an adapter per server hides that, so one measurement drives all three.
Calls are strictly sequential (one in flight).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import mcp_types as types
from mcp.client.session import ClientSession

from benchmarks.corpus import Document
from benchmarks.mcp_load import call, structured, texts


class Adapter(Protocol):
    """How one server's tools are called; all return what the harness compares."""

    name: str
    find_tool: str

    def find_args(self, query: str) -> dict[str, Any]: ...

    def hit_texts(self, result: types.CallToolResult) -> list[str]: ...

    async def store(self, session: ClientSession, docs: Sequence[Document]) -> int: ...


class ShieldAdapter:
    name = "shield"
    find_tool = "qdrant_find"

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size

    def find_args(self, query: str) -> dict[str, Any]:
        return {"query": query, "limit": 10}

    def hit_texts(self, result: types.CallToolResult) -> list[str]:
        return [str(hit["text"]) for hit in structured(result)["results"]]

    async def store(self, session: ClientSession, docs: Sequence[Document]) -> int:
        stored = 0
        for i in range(0, len(docs), self.batch_size):
            batch = [d.as_tool_arg() for d in docs[i : i + self.batch_size]]
            result = await call(session, "qdrant_store", {"documents": batch})
            data = result.structured_content
            stored += int(data["stored"]) if isinstance(data, dict) else len(batch)
        return stored


_ENTRY = re.compile(r"<entry><content>(.*?)</content>", re.S)


class PeerAdapter:
    """mcp-server-qdrant 0.8: ``qdrant-store(information, metadata)``, one chunk per call."""

    name = "peer"
    find_tool = "qdrant-find"

    def find_args(self, query: str) -> dict[str, Any]:
        return {"query": query}  # the peer's limit is QDRANT_SEARCH_LIMIT, default 10

    def hit_texts(self, result: types.CallToolResult) -> list[str]:
        return [m for text in texts(result) for m in _ENTRY.findall(text)]

    async def store(self, session: ClientSession, docs: Sequence[Document]) -> int:
        for doc in docs:
            await call(session, "qdrant-store", {"information": doc.text, "metadata": doc.metadata})
        return len(docs)


class BaselineAdapter:
    name = "baseline"
    find_tool = "noop"

    def find_args(self, query: str) -> dict[str, Any]:
        return {"query": query}

    def hit_texts(self, result: types.CallToolResult) -> list[str]:
        return []

    async def store(self, session: ClientSession, docs: Sequence[Document]) -> int:
        raise NotImplementedError("the baseline stores nothing")


async def time_calls(
    session: ClientSession, adapter: Adapter, queries: Sequence[str], warmup: Sequence[str]
) -> list[float]:
    """Milliseconds per ``find`` round trip over ``queries``, after the ``warmup`` queries."""
    for query in warmup:
        await call(session, adapter.find_tool, adapter.find_args(query))
    out: list[float] = []
    for query in queries:
        start = time.perf_counter()
        await call(session, adapter.find_tool, adapter.find_args(query))
        out.append((time.perf_counter() - start) * 1000)
    return out


async def timed_store(
    session: ClientSession, adapter: Adapter, docs: Sequence[Document]
) -> tuple[int, float]:
    """Store ``docs`` through the server's tool; returns (stored, seconds)."""
    start = time.perf_counter()
    stored = await adapter.store(session, docs)
    return stored, time.perf_counter() - start


async def verify_top_hits(
    session: ClientSession,
    adapter: Adapter,
    probes: Sequence[tuple[str, Document]],
    index: Mapping[str, int],
) -> dict[str, Any]:
    """For queries made from stored texts: is that text the top hit?

    ``ranked`` lists, per probe, the corpus numbers of the hits in rank order (-1 for a
    text not in the corpus), so two servers' rankings can be compared.
    """
    hits = 0
    misses: list[str] = []
    ranked: list[list[int]] = []
    for query, doc in probes:
        result = await call(session, adapter.find_tool, adapter.find_args(query))
        found = adapter.hit_texts(result)
        ranked.append([index.get(t, -1) for t in found])
        if found and found[0] == doc.text:
            hits += 1
        else:
            misses.append(query)
    return {"probes": len(probes), "top1_hits": hits, "misses": misses, "ranked": ranked}
