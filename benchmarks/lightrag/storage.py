"""Phase 1's child: LightRAG's vectors in NanoVectorDB or in our VectorStore (qdrant-edge).

    python -m benchmarks.lightrag.storage --vectors nano --sizes 1000,3500 --data DIR --out F

Indexes the corpus through ``GraphService.index`` (no LLM) with the vectors an ingestion
job would hand it, in calls of ``--sources-per-call`` sources of ``--per-source`` chunks.
Each storage's ``index_done_callback`` (LightRAG's flush at the end of a pipeline run) is
timed by a wrapper installed here, in this process only. At each size: insert rate, the
last call and its flushes, naive query latency through ``GraphService.query`` and the
vector search alone (``chunks_vdb.query`` with a precomputed query vector), files on
disk, RSS growth. At the end the workspace is opened again by a fresh service (as after
a restart) and asked one question. ``--registered-bpe`` applies the profile's proposed
tokenizer fix in this process, so the figures compare the storages rather than the
tokenizer copy both pay on every query and index call.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

from benchmarks.lightrag import inproc
from benchmarks.lightrag.launcher import registered_tokenizer
from benchmarks.lightrag.texts import chunk_texts, queries
from benchmarks.lightrag.vectors import corpus_vectors
from benchmarks.report import percentiles
from orchestrator.graphrag.loader import load_lightrag

FLUSHES: list[tuple[str, str, float]] = []  # (storage class, namespace, seconds)
VECTOR_CLASSES = ("NanoVectorDBStorage", "ShieldVectorStorage")


def _timed_flush(cls: Any) -> None:
    original: Callable[[Any], Awaitable[Any]] = cls.index_done_callback

    async def index_done_callback(self: Any) -> Any:
        start = time.perf_counter()
        try:
            return await original(self)
        finally:
            FLUSHES.append((cls.__name__, str(self.namespace), time.perf_counter() - start))

    cls.index_done_callback = index_done_callback


def _timed_save(cls: Any) -> None:
    """NanoVectorDB.save: the JSON file of every vector, written whole (in LightRAG's
    storage-IO thread); its own time, without the waits around it."""
    original: Callable[[Any], None] = cls.save

    def save(self: Any) -> None:
        start = time.perf_counter()
        try:
            original(self)
        finally:
            FLUSHES.append(("save", Path(str(self.storage_file)).name, time.perf_counter() - start))

    cls.save = save


def instrument() -> None:
    load_lightrag()
    from lightrag.kg.json_doc_status_impl import JsonDocStatusStorage
    from lightrag.kg.json_kv_impl import JsonKVStorage
    from lightrag.kg.nano_vector_db_impl import NanoVectorDBStorage
    from lightrag.kg.networkx_impl import NetworkXStorage
    from nano_vectordb import NanoVectorDB  # type: ignore[import-untyped]

    from orchestrator.graphrag.vector_adapter import ShieldVectorStorage

    for cls in (
        NanoVectorDBStorage,
        ShieldVectorStorage,
        JsonKVStorage,
        JsonDocStatusStorage,
        NetworkXStorage,
    ):
        _timed_flush(cls)
    _timed_save(NanoVectorDB)


def _flush_summary(flushes: list[tuple[str, str, float]]) -> dict[str, float]:
    vector = [s for cls, _ns, s in flushes if cls in VECTOR_CLASSES]
    chunks = [s for cls, ns, s in flushes if cls in VECTOR_CLASSES and ns.endswith("chunks")]
    other = [s for cls, _ns, s in flushes if cls not in (*VECTOR_CLASSES, "save")]
    saves = [s for cls, ns, s in flushes if cls == "save" and "chunks" in ns]
    return {
        "vector_chunks_flushes": len(chunks),
        "nano_chunks_saves": len(saves),
        "vector_chunks_s": sum(chunks),
        "nano_save_chunks_s": sum(saves),
        "vector_all_s": sum(vector),
        "other_max_s": max(other, default=0.0),
        "other_sum_s": sum(other),
    }


async def _queries(graph: Any, rag: Any, knowledge: Any, asked: list[str], warmup: int) -> Any:
    vectors = [await knowledge.embedder.embed_query(q) for q in asked]
    service_ms, search_ms, hits = [], [], []
    for n, question in enumerate(asked):
        start = time.perf_counter()
        answer = await graph.query(inproc.request(question))
        if n >= warmup:
            service_ms.append((time.perf_counter() - start) * 1000)
            hits.append(len(answer.chunks))
    for n, vector in enumerate(vectors):
        start = time.perf_counter()
        await rag.chunks_vdb.query("", top_k=10, query_embedding=vector)
        if n >= warmup:
            search_ms.append((time.perf_counter() - start) * 1000)
    return {
        "naive_ms": percentiles(service_ms, "_ms"),
        "vector_search_ms": percentiles(search_ms, "_ms"),
        "mean_chunks_returned": sum(hits) / max(1, len(hits)),
    }


def _file_bytes(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _disk(data: Path, vectors: str) -> dict[str, int]:
    workspace = data / "lightrag" / inproc.COLLECTION
    files = inproc.dir_bytes(workspace)
    nano = inproc.dir_bytes(workspace, "vdb_")
    store = inproc.dir_bytes(data / "collections", "lr-")
    vector_bytes = nano if vectors == "nano" else store
    return {
        "lightrag_files_bytes": files,
        "vector_bytes": vector_bytes,
        "total_bytes": files + (store if vectors == "store" else 0),
    }


async def probe(args: argparse.Namespace) -> dict[str, Any]:
    vectors_kind: Literal["nano", "store"] = args.vectors
    sizes = sorted(int(s) for s in args.sizes.split(","))
    texts = chunk_texts(sizes[-1], args.seed)
    rows = await corpus_vectors(texts)
    instrument()
    per_call = args.per_source * args.sources_per_call
    out: dict[str, Any] = {
        "vectors": vectors_kind,
        "per_call_chunks": per_call,
        "registered_bpe": args.registered_bpe,
        "sizes": {},
    }
    async with inproc.open_graph(args.data, vectors_kind) as (graph, knowledge):
        await knowledge.embedder.embed_query("load the model")
        gc.collect()
        out["rss_start_mib"] = inproc.rss_mib()  # the model loaded, LightRAG not yet opened
        start = time.perf_counter()
        rag = await graph.workspaces.get(inproc.COLLECTION)
        out["open_s"] = time.perf_counter() - start
        if args.registered_bpe:
            rag.tokenizer = registered_tokenizer()
        gc.collect()
        rss0 = inproc.rss_mib()  # growth from here on: the data, not LightRAG's import
        out["rss_open_mib"] = rss0 - out["rss_start_mib"]
        query_hits = query_misses = 0
        calls: list[dict[str, Any]] = []
        done, busy_s = 0, 0.0
        for size in sizes:
            segment_start, segment_s = done, 0.0
            while done < size:
                stop = min(size, done + per_call)
                items = inproc.sources(texts, done, stop, args.per_source)
                vectors = inproc.job_vectors(texts, rows, done, stop)
                FLUSHES.clear()
                start = time.perf_counter()
                report = await graph.index(inproc.COLLECTION, items, vectors)
                seconds = time.perf_counter() - start
                if report.status != "indexed":
                    raise RuntimeError(f"index of {done}..{stop} answered {report}")
                calls.append(
                    {"stored_before": done, "chunks": stop - done, "seconds": seconds}
                    | _flush_summary(FLUSHES)
                )
                segment_s += seconds
                done = stop
            busy_s += segment_s
            cache = {
                "hits": graph.cache.hits - query_hits,
                "misses": graph.cache.misses - query_misses,
            }
            gc.collect()
            asked = [q for q, _, _ in queries(args.queries + args.warmup, args.seed, f"s{size}")]
            at: dict[str, Any] = {
                "chunks": size,
                "insert_chunks_per_s": size / busy_s,
                "segment_chunks_per_s": (size - segment_start) / segment_s,
                "first_call": calls[0],
                "last_call": calls[-1],
                "rss_growth_mib": inproc.rss_mib() - rss0,
                "disk": _disk(args.data, vectors_kind),
                "index_cache": cache,
            }
            at["vdb_chunks_json_bytes"] = _file_bytes(
                args.data / "lightrag" / inproc.COLLECTION / "vdb_chunks.json"
            )
            at |= await _queries(graph, rag, knowledge, asked, args.warmup)
            query_hits = graph.cache.hits - cache["hits"]
            query_misses = graph.cache.misses - cache["misses"]
            at["rss_growth_after_queries_mib"] = inproc.rss_mib() - rss0
            out["sizes"][str(size)] = at
        out["calls"] = calls
        out["peak_rss_mib"] = inproc.peak_rss_mib()
    out["disk_closed"] = _disk(args.data, vectors_kind)
    inproc.forget_lightrag_memory()
    async with inproc.open_graph(args.data, vectors_kind) as (graph, knowledge):
        await knowledge.embedder.embed_query("load the model")
        start = time.perf_counter()
        rag = await graph.workspaces.get(inproc.COLLECTION)
        opened = time.perf_counter() - start
        if args.registered_bpe:
            rag.tokenizer = registered_tokenizer()
        answer = await graph.query(inproc.request("what does Orion Labs do about ocean tide"))
        out["reopen"] = {
            "open_s": opened,
            "first_query_s": time.perf_counter() - start - opened,
            "chunks": len(answer.chunks),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.lightrag.storage")
    p.add_argument("--vectors", choices=["nano", "store"], required=True)
    p.add_argument("--sizes", required=True)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--per-source", type=int, default=10)
    p.add_argument("--sources-per-call", type=int, default=4)
    p.add_argument(
        "--registered-bpe",
        action="store_true",
        help="give LightRAG the registered cl100k BPE (the profile's proposed fix), so the "
        "figures are the storages' and not the tokenizer copy's",
    )
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    args.out.write_text(json.dumps(asyncio.run(probe(args)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
