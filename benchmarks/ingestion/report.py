"""The ingestion suite's figures, targets, notes, table and ingest-latest.{json,md}.

Nothing here fails a run: a target is reported as met, not met, or n/a (not measured).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.ingestion.accept import PACED_INTERVAL_S
from benchmarks.ingestion.accept import TOOLS as ACCEPT_TOOLS
from benchmarks.ingestion.raw import RAW_BATCHES
from benchmarks.report import (
    Results,
    Target,
    fmt,
    get,
    note_busy_phases,
    ratio,
    render_markdown,
    render_text,
    write_files,
)

PCT = ("p50", "p99")


def rates(run: dict[str, Any], unit: str) -> dict[str, Any]:
    """Per-second rates of a throughput run (``unit``: "pages" or "documents")."""
    seconds = run.get("seconds") or 0.0
    out = dict(run)
    if seconds > 0:
        out[f"{unit}_per_s"] = run.get(unit, 0) / seconds
        out["chunks_per_s"] = run.get("chunks", 0) / seconds
    return out


def targets(results: Results) -> list[Target]:
    clients = results["meta"]["settings"]["clients"]
    out = [
        Target(
            f"{name} accept p99, {clients} clients, {label} (ms)",
            get(results, "accept", key, "stats_ms", name, "p99"),
            50.0,
            higher_is_better=False,
            unit=" ms",
        )
        for key, label in (("many", "closed loop"), ("paced", "paced 1 call/s each"))
        for name in ACCEPT_TOOLS
    ]
    us = get(results, "breaker", "client", "stats_us", "p99")
    out.append(
        Target(
            "breaker fast-fail p99, OrchestratorClient (ms)",
            None if us is None else us / 1000,
            1.0,
            higher_is_better=False,
            unit=" ms",
        )
    )
    tp = results.get("throughput", {})
    for part in ("site", "docs"):
        server = get(tp, part, "server", "chunks_per_s")
        out.append(
            Target(
                f"{part}: server chunks/s ÷ raw model",
                ratio(server, get(results, "raw_model", part, "chunks_per_s")),
                0.7,
                higher_is_better=True,
            )
        )
        out.append(
            Target(
                f"{part}: server ÷ naive sequential (chunks/s)",
                ratio(server, get(tp, part, "naive", "chunks_per_s")),
                2.0,
                higher_is_better=True,
            )
        )
    return out


def _pair(node: Any, path: tuple[str, ...], keys: tuple[str, ...], digits: int = 1) -> str:
    return " / ".join(fmt(get(node, *path, key), digits) for key in keys)


def table(results: Results) -> list[list[str]]:
    rows = [["measure", "shield", "reference", "shield ÷ reference"]]
    many = results["meta"]["settings"]["clients"]
    for name in ACCEPT_TOOLS:
        for label, key in (
            ("1 client, idle server", "one"),
            (f"{many} clients, closed loop", "many"),
            (f"{many} clients, paced 1 call/s each", "paced"),
        ):
            s = ("accept", key, "stats_ms", name)
            rows.append(
                [f"{name} accept p50 / p99, {label} (ms)", _pair(results, s, PCT, 2), "", ""]
            )
    for key, label in (("many", "closed loop"), ("paced", "paced")):
        rows.append(
            [
                f"calls accepted per second, {many} clients, {label}",
                fmt(get(results, "accept", key, "accepted_per_s")),
                "",
                "",
            ]
        )
    c = ("breaker", "client")
    refused = get(results, *c, "opening_us", "p50")
    rows.append(
        [
            "open breaker, OrchestratorClient.get_job p50 / p99 (µs) "
            "[ref: refused connection, breaker closed, p50]",
            _pair(results, (*c, "stats_us"), PCT),
            fmt(refused),
            fmt(ratio(get(results, *c, "stats_us", "p50"), refused), 3),
        ]
    )
    m = ("breaker", "mcp")
    opening = get(results, *m, "opening_ms", "p50")
    rows.append(
        [
            "open breaker, MCP get_job_status p50 / p99 (ms) "
            "[ref: the 5 calls that opened it, p50]",
            _pair(results, (*m, "stats_ms"), PCT, 2),
            fmt(opening, 2),
            fmt(ratio(get(results, *m, "stats_ms", "p50"), opening), 2),
        ]
    )
    tp = results.get("throughput", {})
    for part, unit in (("site", "pages"), ("docs", "documents")):
        srv, nai = (part, "server"), (part, "naive")
        rows.append(
            [
                f"{part}: {unit} / chunks / seconds [ref: naive sequential]",
                _pair(tp, srv, (unit, "chunks", "seconds")),
                _pair(tp, nai, (unit, "chunks", "seconds")),
                "",
            ]
        )
        for rate in (f"{unit}_per_s", "chunks_per_s"):
            rows.append(
                [
                    f"{part}: {rate.replace('_per_s', '/s')} [ref: naive sequential]",
                    fmt(get(tp, *srv, rate), 2),
                    fmt(get(tp, *nai, rate), 2),
                    fmt(ratio(get(tp, *srv, rate), get(tp, *nai, rate)), 2),
                ]
            )
        raw = get(results, "raw_model", part, "chunks_per_s")
        batch = results.get("raw_model", {}).get(part, {}).get("best_batch", "?")
        rows.append(
            [
                f"{part}: chunks/s [ref: raw model on the same chunks, batch {batch}]",
                fmt(get(tp, *srv, "chunks_per_s"), 2),
                fmt(raw, 2),
                fmt(ratio(get(tp, *srv, "chunks_per_s"), raw), 2),
            ]
        )
    return rows


def notes(results: Results) -> list[str]:
    """What the figures mean, and what this run's figures say beyond the table."""
    cfg = results["meta"]["settings"]
    out = [
        f"Accept latency: {cfg['clients']} MCP sessions (mcp SDK, streamable HTTP) in one "
        f"client process, all calling at once, back to back, {cfg['calls']} calls of each "
        "tool per session after one untimed call of each ('closed loop': the latency is "
        "mostly queueing, 32 calls in flight ÷ the calls accepted per second). The paced row: "
        f"the same 32 sessions, each starting one call every {PACED_INTERVAL_S:g} s "
        "(offered load 32 calls/s). The 1-client row waits (untimed) "
        "for each job to finish before the next call: the accept path on an idle server. "
        "Behind the 32 clients "
        "the accepted jobs run in the same server: crawl_web of the local site's index "
        "(max_pages 1) and ingest_doc of a 1-line Markdown file (unchanged after the first, "
        "so skipped), all competing for the same 2 cores as the server and the clients.",
        "Breaker: OrchestratorClient.get_job against a closed port with a Breaker "
        "(threshold 5); after 5 refused connections every call must raise "
        "DependencyUnavailable without touching the network; 100 untimed calls, then "
        f"{cfg['breaker_samples']} timed one by one. The MCP row is get_job_status through "
        "shield-mcp serve with SHIELD_ORCHESTRATOR_URL at a dead port (MCP round trip included).",
        f"Throughput: local site of {cfg['site_pages']} pages ({cfg['site_paragraphs']} "
        "paragraphs each) served by a separate process, one crawl_web job; "
        f"{cfg['doc_copies']} documents per format × 8 formats, {cfg['doc_paragraphs']} "
        "corpus paragraphs each, one ingest_doc job per file, all submitted at once. "
        "Fresh server and data dir, warmed up first by small jobs of every kind in another "
        "collection; server defaults (worker concurrency 2, embed batch 16, chunks of 256 "
        "tokens). Time from the first submit until the last job is seen succeeded.",
        "Naive baseline: benchmarks/ingestion/naive.py, a separate process: crawl4ai "
        "(AsyncHTTPCrawlerStrategy) one page at a time breadth-first, docling convert, the "
        "pipeline's HybridChunker set-up, LocalEmbedder (batch 16), EdgeVectorStore upsert; "
        "documents one at a time the same way. Set-up and a warm-up excluded from its time.",
        "Raw model: the int8 ONNX model alone (tokenizers + onnxruntime, benchmarks/raw_model.py) "
        "on the naive run's chunk texts (the same inputs cut by the same chunker), sorted "
        f"by length, batch sizes {list(RAW_BATCHES)}, onnxruntime threads spinning or not; "
        "the best rate over those and over the measurements before and after the server is "
        f"the reference (each measured for up to {cfg['raw_budget_s']:g} s).",
        "The machine has 2 cores and is shared: other work may run during any phase "
        "(quiet_waits in the JSON). Compare ratios within one run, not absolute figures "
        "across runs.",
    ]
    tp = results["throughput"]
    for part in ("site", "docs"):
        srv, nai = tp[part].get("server"), tp[part].get("naive")
        if srv and nai and srv.get("chunks") != nai.get("chunks"):
            out.append(
                f"{part}: the server stored {srv.get('chunks')} chunks, the naive script "
                f"{nai.get('chunks')}; rates are per chunk, so the comparison still holds."
            )
        if srv and srv.get("succeeded") != srv.get("jobs"):
            lost = srv.get("jobs", 0) - srv.get("succeeded", 0)
            out.append(f"{part}: {lost} job(s) did not succeed: {srv.get('failed')}")
        stages = (nai or {}).get("stages_s") or {}
        if nai and stages.get("embed") and nai.get("seconds"):
            share = stages["embed"] / nai["seconds"]
            out.append(
                f"{part}: the naive script spent {share:.0%} of its time embedding; with "
                "everything else fully overlapped, the most a pipeline embedding at the same "
                f"speed could gain on it is {1 / share:.2f}×."
            )
        if srv and srv.get("searchable") is False:
            out.append(f"{part}: the probe search did not find the expected text after the run.")
    return out


def markdown(results: Results) -> str:
    meta = results["meta"]
    run_line = (
        f"Run {meta['started']} on {meta['machine']} ({meta.get('duration_s', 0):.0f} s); "
        f"settings: {json.dumps(meta['settings'], sort_keys=True)}."
    )
    return render_markdown(table(results), results, run_line)


def text_table(results: Results) -> str:
    return render_text(table(results), results)


def write(results: Results, out_dir: Path) -> tuple[Path, Path]:
    results["targets"] = [t.as_dict() for t in targets(results)]
    note_busy_phases(results)
    paths = (out_dir / "ingest-latest.json", out_dir / "ingest-latest.md")
    write_files(results, markdown(results), *paths)
    return paths
