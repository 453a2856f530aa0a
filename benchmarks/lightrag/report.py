"""The LightRAG suite's tables, targets and notes; ``lightrag-latest.{json,md}``.

Every ratio is between two figures of the same run. Nothing here fails a run: a target
is met, not met or n/a, and a phase that did not run leaves "—" in its cells.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.report import Results, Target, fmt, get, note_busy_phases, ratio, write_files

MIB = 1024 * 1024
VARIANTS = {
    "off": "LightRAG off",
    "on": "LightRAG on, no LLM",
    "fixed": "LightRAG on, no LLM, registered BPE (what-if: the proposed fix)",
    "llm": "LightRAG on, instant stand-in LLM",
}


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _mib(value: float | None) -> float | None:
    return None if value is None else value / MIB


def _pair(a: float | None, b: float | None, digits: int = 1) -> str:
    return f"{fmt(a, digits)} / {fmt(b, digits)}"


def storage_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    st = results.get("storage", {})
    sizes = sorted({s for kind in st.values() for s in kind.get("sizes", {})}, key=int)
    header = ["measure"]
    for size in sizes:
        header += [f"nano @{size}", f"store @{size}", "store ÷ nano"]

    def row(
        label: str,
        path: tuple[str, ...],
        scale: float = 1.0,
        digits: int = 1,
        nano_only: bool = False,
    ) -> list[str]:
        cells = [label]
        for size in sizes:
            a, b = (get(st, kind, "sizes", size, *path) for kind in ("nano", "store"))
            a, b = (None if v is None else v * scale for v in (a, b))
            if nano_only:
                b = None
            cells += [fmt(a, digits), fmt(b, digits), fmt(ratio(b, a), 2)]
        return cells

    per_call = get(st, "nano", "per_call_chunks") or get(st, "store", "per_call_chunks")
    call = f"last index call ({fmt(per_call, 0)} chunks)"
    flushes = (
        get(st, "nano", "sizes", sizes[-1], "last_call", "vector_chunks_flushes") if sizes else None
    )
    rows = [
        row(
            "insert, chunks/s (GraphService.index, job's vectors, no LLM)", ("insert_chunks_per_s",)
        ),
        row(f"{call}: seconds", ("last_call", "seconds"), digits=3),
        row(
            f"{call}: flushes of the chunk vectors, {fmt(flushes, 0)} of them (s, summed)",
            ("last_call", "vector_chunks_s"),
            digits=3,
        ),
        row(
            f"{call}: NanoVectorDB.save of vdb_chunks.json, each flush (s, summed)",
            ("last_call", "nano_save_chunks_s"),
            digits=3,
            nano_only=True,
        ),
        row(
            f"{call}: slowest other flush (JSON KV, graph) (s)",
            ("last_call", "other_max_s"),
            digits=3,
        ),
        row("vdb_chunks.json (MiB)", ("vdb_chunks_json_bytes",), 1 / MIB, 2, nano_only=True),
        row("naive query p50 (ms, GraphService.query)", ("naive_ms", "p50_ms")),
        row("naive query p99 (ms)", ("naive_ms", "p99_ms")),
        row(
            "vector search alone p50 (ms, chunks_vdb.query)",
            ("vector_search_ms", "p50_ms"),
            digits=2,
        ),
        row(
            "on disk: LightRAG files + its vectors (MiB, allocated)",
            ("disk", "total_bytes"),
            1 / MIB,
        ),
        row("of which vectors (MiB)", ("disk", "vector_bytes"), 1 / MIB),
        row("RSS growth since the workspace opened (MiB)", ("rss_growth_mib",)),
    ]
    nano_re, store_re = (st.get(k, {}).get("reopen", {}) for k in ("nano", "store"))
    last = ["after a restart: open + first naive query (s)"] + ["", "", ""] * (len(sizes) - 1)
    a = _sum(nano_re.get("open_s"), nano_re.get("first_query_s"))
    b = _sum(store_re.get("open_s"), store_re.get("first_query_s"))
    if sizes:
        rows.append([*last, fmt(a, 2), fmt(b, 2), fmt(ratio(b, a), 2)])
    return header, rows


def _sum(*values: float | None) -> float | None:
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def query_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    q = results.get("queries", {})
    base = get(q, "qdrant_find", "stats_ms", "p50_ms")
    header = [
        "call (MCP, streamable HTTP)",
        "p50 ms",
        "p99 ms",
        "p50 ÷ qdrant_find p50",
        "server-side total p50 ms",
        "items returned (mean)",
    ]
    rows = []
    for key, row in q.items():
        p50 = get(row, "stats_ms", "p50_ms")
        rows.append(
            [
                key,
                fmt(p50),
                fmt(get(row, "stats_ms", "p99_ms")),
                fmt(ratio(p50, base), 1),
                fmt(get(row, "server_total_ms", "p50_ms")),
                fmt(row.get("mean_items"), 1),
            ]
        )
    return header, rows


def ingest_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    ing = results.get("ingest", {})
    off = get(ing, "off", "chunks_per_s")
    off_cpu = _cpu_per_chunk(ing.get("off"))
    header = [
        "variant",
        "docs / chunks",
        "seconds",
        "chunks/s",
        "÷ off",
        "server CPU s",
        "CPU per chunk ÷ off",
        "in LightRAG inserts (s)",
        "LightRAG cache hits / misses",
        "texts embedded",
        "LLM calls",
        "entities / relations",
    ]
    rows = []
    for key, label in VARIANTS.items():
        v = ing.get(key)
        if not v:
            continue
        c = v.get("counters", {})
        llm = v.get("llm_calls")
        rows.append(
            [
                label,
                f"{v.get('succeeded')} / {v.get('chunks')}",
                fmt(v.get("seconds")),
                fmt(v.get("chunks_per_s")),
                fmt(ratio(v.get("chunks_per_s"), off), 2),
                fmt(v.get("server_cpu_s")),
                fmt(ratio(_cpu_per_chunk(v), off_cpu), 2),
                fmt(c.get("lightrag_insert_s")) if key != "off" else "—",
                _pair(c.get("cache_hits"), c.get("cache_misses"), 0) if key != "off" else "—",
                fmt(c.get("texts_embedded"), 0),
                fmt(sum(llm.values()), 0) if llm else "—",
                _pair(v.get("lightrag_entities"), v.get("lightrag_relations"), 0),
            ]
        )
    return header, rows


def _cpu_per_chunk(v: dict[str, Any] | None) -> float | None:
    if not v or not v.get("chunks"):
        return None
    return ratio(v.get("server_cpu_s"), float(v["chunks"]))


def memory_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    ing = results.get("ingest", {})
    off = get(ing, "off", "rss_after_mib")
    header = [
        "variant",
        "RSS before the corpus (MiB)",
        "RSS after (MiB, process tree)",
        "after ÷ off",
        "main process after (MiB)",
        "LightRAG files (MiB)",
        "Qdrant collections (MiB)",
    ]
    rows = []
    for key, label in VARIANTS.items():
        v = ing.get(key)
        if not v:
            continue
        rows.append(
            [
                label,
                fmt(v.get("rss_before_mib")),
                fmt(v.get("rss_after_mib")),
                fmt(ratio(v.get("rss_after_mib"), off), 2),
                fmt(v.get("rss_main_after_mib")),
                fmt(_mib(get(v, "disk", "lightrag_bytes"))),
                fmt(_mib(get(v, "disk", "collections_bytes"))),
            ]
        )
    return header, rows


def profile_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    p = results.get("profile", {})
    header = [
        f"GraphService.query, {p.get('chunks', '?')} chunks (stand-in LLM)",
        "p50 ms as shipped",
        "p50 ms, registered BPE",
        "shipped ÷ registered",
    ]
    rows = []
    for key, label in (
        ("naive", "naive mode, only_context (whole query)"),
        ("global_config", "LightRAG._build_global_config (once per query)"),
        ("embed_query", "embedding the question (local model)"),
        ("vector_search", "vector search (chunks_vdb.query)"),
        ("local_keywords", "local mode, caller keywords, only_context (whole query)"),
        ("mix_llm", "mix mode, stand-in LLM keywords + answer (whole query)"),
    ):
        a, b = get(p, key, "p50_ms"), get(p, f"{key}_registered_bpe", "p50_ms")
        rows.append([label, fmt(a, 2), fmt(b, 2), fmt(ratio(a, b), 1)])
    return header, rows


def targets(results: Results) -> list[Target]:
    ing = results.get("ingest", {})
    on, off = get(ing, "on", "chunks_per_s"), get(ing, "off", "chunks_per_s")
    embedded_on = get(ing, "on", "counters", "texts_embedded")
    embedded_off = get(ing, "off", "counters", "texts_embedded")
    return [
        Target("ingestion chunks/s, LightRAG on (no LLM) ÷ off", ratio(on, off), 0.8, True),
        Target(
            "texts embedded, LightRAG on (no LLM) ÷ off",
            ratio(embedded_on, embedded_off),
            1.0,
            False,
        ),
    ]


_WRAPPERS = ("GraphService.query", "GraphQuerier.query", "LightRAG.aquery_data", "embed_texts")


def _frames_line(top: list[dict[str, Any]]) -> str:
    shown = [t for t in top if not t["frame"].startswith(_WRAPPERS)][:6]
    return ", ".join(f"{t['frame']} {t['share']:.0%}" for t in shown)


def notes(results: Results) -> list[str]:
    out = []
    p = results.get("profile", {})
    for key, what in (
        ("profile", "as shipped"),
        ("profile_registered_bpe", "with the tokenizer's BPE from tiktoken's registry"),
    ):
        prof = p.get(key) or {}
        if prof.get("top_inclusive"):
            out.append(
                f"Naive query profile ({p.get('chunks')} chunks, {what}; {prof['profiler']}, "
                f"{prof['per_query_ms']:.0f} ms per query under the profiler), share of the "
                f"time: {_frames_line(prof['top_inclusive'])}."
            )
    st = results.get("storage", {})
    last = (st.get("nano") or {}).get("calls") or [{}]
    saves = last[-1].get("nano_chunks_saves")
    if saves and saves > 1:
        out.append(
            f"LightRAG flushed every storage once per document, not once per index call: "
            f"the last call ({last[-1].get('chunks')} chunks) wrote vdb_chunks.json {saves} "
            "times (lightrag/pipeline.py: _insert_done in process_single_document). With "
            "NanoVectorDB each flush rewrites the file of every vector."
        )
    return out


def markdown(results: Results) -> str:
    meta = results["meta"]
    lines = [
        f"# LightRAG benchmark ({'quick' if meta['settings'].get('quick') else 'full'} run)",
        "",
    ]
    sections = (
        ("Where a naive query's time goes", profile_rows),
        (
            "1. LightRAG's vectors: NanoVectorDB (nano) vs our VectorStore on qdrant-edge (store)"
            + (
                " — both with the registered-BPE fix applied, so the figures are the storages'"
                if get(results, "storage", "nano", "registered_bpe")
                else " — as shipped"
            ),
            storage_rows,
        ),
        (
            f"2. Query latency through the MCP server ({meta.get('query_chunks', '?')} chunks, "
            "LLM: the instant stand-in)",
            query_rows,
        ),
        (
            "3. Ingestion through the real pipeline (one ingest_doc job per Markdown file; "
            f"without the LLM the faster of {meta['settings'].get('ingest_rounds', 1)} rounds)",
            ingest_rows,
        ),
        ("4. Server memory and data after the corpus", memory_rows),
    )
    for title, build in sections:
        header, rows = build(results)
        lines += [f"## {title}", ""] + (_table(header, rows) if rows else ["(not measured)"]) + [""]
    lines += ["| target | measured | goal | met |", "|---|---|---|---|"]
    for t in results["targets"]:
        met = {True: "**met**", False: "not met", None: "n/a"}[t["met"]]
        lines.append(f"| {t['name']} | {fmt(t['value'], 2)} | {t['target']} | {met} |")
    lines += ["", f"Run {meta['started']}, {meta['machine']}, {meta.get('duration_s', 0):.0f} s."]
    lines += [f"- {note}" for note in meta["notes"]]
    return "\n".join(lines) + "\n"


def write(results: Results, out_dir: Path) -> tuple[Path, Path]:
    results["targets"] = [t.as_dict() for t in targets(results)]
    note_busy_phases(results)
    results["meta"]["notes"].extend(notes(results))
    paths = (out_dir / "lightrag-latest.json", out_dir / "lightrag-latest.md")
    write_files(results, markdown(results), *paths)
    return paths
