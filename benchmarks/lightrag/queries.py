"""Phase 2: ``lightrag_query`` per mode beside ``qdrant_find``, through the real MCP server.

One MCP session (official SDK, streamable HTTP), one call in flight, on the collection the
LLM variant of the ingestion phase just filled (a few thousand chunks, the graph built by
the instant stand-in LLM). Each row has its own questions (no cache of the server's or of
LightRAG's can hit across rows or within one); the rows take turns, one question each per
round, so a busy moment of the machine is spread over all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from benchmarks.ingestion.client import tool
from benchmarks.lightrag.texts import queries
from benchmarks.mcp_load import connect
from benchmarks.report import percentiles

PASSAGES = 10  # qdrant_find's limit and lightrag_query's chunk_top_k
GRAPH_MODES = ("local", "global", "hybrid", "mix")

Args = Callable[[str, str, list[str]], dict[str, Any]]


def _find(question: str, _name: str, _words: list[str]) -> dict[str, Any]:
    return {"query": question, "limit": PASSAGES}


def _lightrag(mode: str, *, only_context: bool, keywords: bool) -> Args:
    def args(question: str, name: str, words: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "query": question,
            "mode": mode,
            "only_context": only_context,
            "chunk_top_k": PASSAGES,
        }
        if keywords:
            out |= {"low_level_keywords": [name], "high_level_keywords": words}
        return out

    return args


def rows(llm: bool) -> list[tuple[str, str, Args]]:
    """(row key, tool, arguments from a question); the LLM rows only with an LLM."""
    out: list[tuple[str, str, Args]] = [
        ("qdrant_find", "qdrant_find", _find),
        (
            "naive, only_context",
            "lightrag_query",
            _lightrag("naive", only_context=True, keywords=False),
        ),
    ]
    if llm:
        out.append(
            (
                "naive, LLM answer",
                "lightrag_query",
                _lightrag("naive", only_context=False, keywords=False),
            )
        )
        for mode in GRAPH_MODES:
            args = _lightrag(mode, only_context=False, keywords=False)
            out.append((f"{mode}, LLM keywords + answer", "lightrag_query", args))
    for mode in GRAPH_MODES:
        args = _lightrag(mode, only_context=True, keywords=True)
        out.append((f"{mode}, caller keywords, only_context", "lightrag_query", args))
    return out


async def latency(
    url: str, collection: str, *, llm: bool, count: int, warmup: int, seed: int
) -> dict[str, Any]:
    plan = rows(llm)
    asked = {key: queries(warmup + count, seed, f"mcp:{key}") for key, _, _ in plan}
    samples: dict[str, list[float]] = {key: [] for key, _, _ in plan}
    server_ms: dict[str, list[float]] = {key: [] for key, _, _ in plan}
    found: dict[str, list[int]] = {key: [] for key, _, _ in plan}
    async with connect(url) as conn:
        for n in range(warmup + count):
            for key, name, make in plan:
                question, entity, words = asked[key][n]
                args = make(question, entity, words) | {"collection": collection}
                start = time.perf_counter()
                answer = await tool(conn.session, name, args)
                elapsed = (time.perf_counter() - start) * 1000
                if n < warmup:
                    continue
                samples[key].append(elapsed)
                if name == "qdrant_find":
                    found[key].append(len(answer.get("results") or []))
                else:
                    server_ms[key].append(float(answer["timings"]["total_ms"]))
                    found[key].append(
                        len(answer.get("chunks") or [])
                        + len(answer.get("entities") or [])
                        + len(answer.get("relations") or [])
                    )
    return {
        key: {
            "tool": name,
            "stats_ms": percentiles(samples[key], "_ms"),
            "server_total_ms": percentiles(server_ms[key], "_ms") if server_ms[key] else None,
            "mean_items": sum(found[key]) / max(1, len(found[key])),
        }
        for key, name, _ in plan
    }
