"""shield-mcp vs qdrant/mcp-server-qdrant, side by side, in one run.  ``make bench``.

    .venv/bin/python -m benchmarks.search.run [--quick] [--sizes 1000,10000] [--out DIR]

See benchmarks/README.md ("Search, store, start-up") for what is measured and how.
Nothing here asserts on timings: the run prints a table and whether each target is met,
and writes DIR/latest.json and DIR/latest.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import corpus, servers
from benchmarks.harness import RESULTS_DIR, QuietWaits, finish_meta, log, new_meta, versions
from benchmarks.raw_model import RawModel
from benchmarks.search import peer, report
from benchmarks.search.adapters import PeerAdapter, ShieldAdapter
from benchmarks.search.phases import Plan, bench_baseline, bench_store_server

ALL_SERVERS = ("baseline", "peer", "shield")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.search.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="small sizes and few samples (~2 min)")
    p.add_argument("--sizes", help="comma-separated chunk counts (default 1000,10000)")
    p.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR,
        help="where latest.json and latest.md go (default benchmarks/results)",
    )
    p.add_argument(
        "--servers", default=",".join(ALL_SERVERS), help="subset of baseline,peer,shield"
    )
    p.add_argument("--queries", type=int, help="timed find calls per size (default 300)")
    p.add_argument("--warmup", type=int, help="untimed find calls first (default 30)")
    p.add_argument("--cold-runs", type=int, help="cold starts per server (default 5)")
    p.add_argument("--batch", type=int, default=64, help="shield store / raw model batch size")
    p.add_argument("--raw-chunks", type=int, help="chunks for the raw model rate (default 512)")
    p.add_argument(
        "--peer-fill-via-tool",
        action="store_true",
        help="fill the peer's larger sizes through qdrant-store too (slow)",
    )
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each phase wait up to this many seconds for the machine to be idle (0: no)",
    )
    return p.parse_args(argv)


def settings(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([300] if quick else [1000, 10000])
    )
    return {
        "sizes": sorted(sizes),
        "queries": args.queries or (60 if quick else 300),
        "warmup": args.warmup or (10 if quick else 30),
        "repeat_set": 10,
        "repeat_rounds": 6 if quick else 20,
        "cold_runs": args.cold_runs or (2 if quick else 5),
        "batch": args.batch,
        "raw_chunks": args.raw_chunks or (128 if quick else 512),
        "probes": 5,
        "peer_fill": "tool" if args.peer_fill_via_tool else "direct",
        "seed": args.seed,
        "quiet_wait": args.quiet_wait,
        "quick": quick,
    }


def new_results(cfg: dict[str, Any]) -> dict[str, Any]:
    meta = new_meta(cfg, versions("mcp", "fastmcp", "onnxruntime", "tokenizers"))
    return {"meta": meta | {"sizes": cfg["sizes"]}, "servers": {}}


def baseline_spec() -> servers.ServerSpec:
    """The transport floor: a fastmcp 4 server with one no-op tool."""
    module = [sys.executable, "-m", "benchmarks.search.baseline_server"]
    return servers.ServerSpec(
        name="baseline",
        http_argv=[*module, "--transport", "http", "--port", "{port}"],
        stdio_argv=[*module, "--transport", "stdio"],
        health_path="/health",
    )


def raw_model_rate(
    docs: list[corpus.Document],
    cfg: dict[str, Any],
    plan: Plan,
    earlier: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The model alone at the store batch size (the target's reference), and at 16 and 32.

    Given an ``earlier`` measurement, measures again and keeps, per batch size, the higher.
    """
    quiet = plan.quiet("raw model")
    log(f"raw int8 model: {cfg['raw_chunks']} chunks")
    model = RawModel()
    texts = [d.text for d in docs[: cfg["raw_chunks"]]]
    batches = sorted({cfg["batch"], 32, 16}, reverse=True)
    rates = {str(b): model.throughput(texts, b).chunks_per_s for b in batches}
    log(f"  chunks/s by batch size: { {b: round(r, 1) for b, r in rates.items()} }")
    runs = [*(earlier or {}).get("runs", []), {"by_batch": rates, "quiet": quiet}]
    by_batch = {str(b): max(run["by_batch"][str(b)] for run in runs) for b in batches}
    best = max(by_batch, key=lambda b: by_batch[b])
    q_ms = sorted(model.query_latency_ms(corpus.make_query_sets({"raw": 50})["raw"]))
    return {
        "chunks": len(texts),
        "batch_size": cfg["batch"],
        "chunks_per_s": by_batch[str(cfg["batch"])],
        "by_batch": by_batch,
        "best_batch": int(best),
        "best_chunks_per_s": by_batch[best],
        "query_embed_p50_ms": q_ms[len(q_ms) // 2],
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = settings(args)
    wanted = [s for s in ALL_SERVERS if s in args.servers.split(",")]
    results = new_results(cfg)
    notes: list[str] = results["meta"]["notes"]
    if "shield" in wanted and not servers.shield_available():
        log("shield-mcp is not available (python -m shield_mcp.cli serve --help failed): skipped")
        notes.append("shield-mcp was not available: its columns are empty.")
        wanted.remove("shield")
    if "peer" in wanted:
        peer.ensure_venv()
        peer.ensure_model_cache()
        results["meta"]["versions"]["peer"] = peer.peer_versions()

    sizes = cfg["sizes"]
    docs = corpus.make_documents(sizes[-1], seed=cfg["seed"])
    counts = {"repeat": cfg["repeat_set"]}
    for size in sizes:
        counts |= {f"warmup@{size}": cfg["warmup"], f"find@{size}": cfg["queries"]}
    queries = corpus.make_query_sets(counts, seed=cfg["seed"])
    results["meta"]["corpus"] = {
        "digest": corpus.digest(docs),
        "chunks": len(docs),
        "mean_chars": sum(len(d.text) for d in docs) / len(docs),
    }

    scratch = Path(tempfile.mkdtemp(prefix="shield-bench-"))
    plan = Plan(
        sizes,
        docs,
        queries,
        cfg["repeat_rounds"],
        cfg["cold_runs"],
        cfg["probes"],
        scratch,
        QuietWaits(cfg["quiet_wait"]),
    )
    started = time.monotonic()
    ok = False
    try:
        results["raw_model"] = raw_model_rate(docs, cfg, plan)
        sv = results["servers"]
        if "baseline" in wanted:
            sv["baseline"] = bench_baseline(baseline_spec(), plan)
        if "peer" in wanted:
            prefill = (
                None
                if cfg["peer_fill"] == "tool"
                else (lambda path, new: peer.direct_fill(path, new, scratch))
            )
            sv["peer"] = bench_store_server(peer.peer_spec, PeerAdapter(), plan, prefill)
            if prefill is not None and len(sizes) > 1:
                notes.append(
                    f"The peer's sizes above {sizes[0]} were pre-filled with the server stopped: "
                    "vectors from the peer's own FastEmbedProvider, written by its own "
                    "QdrantConnector's client into its QDRANT_LOCAL_PATH (same collection "
                    "config, payload and id scheme as qdrant-store). --peer-fill-via-tool "
                    "stores them through MCP instead."
                )
        if "shield" in wanted:
            sv["shield"] = bench_store_server(
                servers.shield_spec, ShieldAdapter(cfg["batch"]), plan
            )
        # The model's rate again at the end: the reference is the higher of the two, so
        # a busy moment during one measurement cannot flatter shield's ratio.
        results["raw_model"] = raw_model_rate(docs, cfg, plan, results["raw_model"])
        ok = True
    finally:
        finish_meta(results["meta"], started, plan.quiet)
        if ok:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            log(f"failed; logs and data kept in {scratch}")
    notes += [
        "Latency: sequential tools/call round trips through the mcp SDK ClientSession over "
        "streamable HTTP (initialize handshake), each query distinct (no cache hits), after "
        "warm-up; 'repeated query' cycles 10 queries already asked once.",
        "Store: shield batches of --batch chunks per qdrant_store call; the peer one chunk per "
        "qdrant-store call (its tool takes one text).",
        "The baseline row repeats the same no-op figure in every size column.",
    ]
    md_json = report.write(results, args.out)
    print(report.text_table(results))
    print(f"\nwritten: {md_json[0]} and {md_json[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
