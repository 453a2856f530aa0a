"""Memory of the embedded server (issue 9): RSS after storing 10,000 chunks, and again.

    .venv/bin/python -m benchmarks.memory.run [--quick] [--out DIR]

See benchmarks/README.md ("Memory") for what is measured and how. Nothing here asserts on
timings or sizes: the run prints a table and whether each target is met, writes
DIR/memory-latest.json and DIR/memory-latest.md, and exits 0. A phase that fails is named
in the notes and the others still run.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from benchmarks.harness import REPO, RESULTS_DIR, QuietWaits, finish_meta, log, new_meta, versions
from benchmarks.memory import report
from benchmarks.memory.ingest import ingest_rounds
from benchmarks.memory.spec import EMBEDDERS, spec
from benchmarks.memory.store import store_passes
from benchmarks.memory.texts import mixed_chunks, write_large_markdown
from benchmarks.raw_model import RawModel
from benchmarks.servers import RunningServer

PHASES = ("store", "embed-only", "ingest")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.memory.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="1,000 chunks, a smaller document")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="default benchmarks/results")
    p.add_argument("--chunks", type=int, help="chunks per store pass (10,000; quick 1,000)")
    p.add_argument("--batch", type=int, default=64, help="chunks per qdrant_store call (64)")
    p.add_argument("--passes", type=int, default=2, help="stores of the same chunks (2)")
    p.add_argument("--paragraphs", type=int, help="the large document's (1,600; quick 300)")
    p.add_argument("--embed-only", type=int, help="chunks of the embed-only process (2,000)")
    p.add_argument("--embedders", default="bounded,legacy", help="bounded,legacy or one")
    p.add_argument("--phases", default=",".join(PHASES), help=",".join(PHASES))
    p.add_argument("--settle", type=float, default=3.0, help="s idle before reading RSS (3)")
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument("--quiet-wait", type=float, help="s to wait for a quiet machine (30; quick 5)")
    return p.parse_args(argv)


def settings(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    embedders = [e for e in args.embedders.split(",") if e]
    phases = [p for p in args.phases.split(",") if p]
    for name, given, known in (("embedder", embedders, EMBEDDERS), ("phase", phases, PHASES)):
        unknown = set(given) - set(known)
        if unknown:
            raise SystemExit(f"unknown {name}(s) {sorted(unknown)}; choose from {list(known)}")
    return {
        "quick": quick,
        "chunks": args.chunks or (1000 if quick else 10_000),
        "batch": args.batch,
        "passes": args.passes,
        "large_doc_paragraphs": args.paragraphs or (300 if quick else 1600),
        "ingest_rounds": 2,
        "embed_only_chunks": args.embed_only or (300 if quick else 2000),
        "raw_chunks": 128 if quick else 512,
        "raw_batch": 16,
        "embedders": embedders,
        "phases": phases,
        "settle_s": args.settle,
        "seed": args.seed,
        "quiet_wait": args.quiet_wait if args.quiet_wait is not None else (5.0 if quick else 30.0),
    }


def raw_rate(texts: list[str], batch: int, model: RawModel) -> float:
    """The raw model on ``texts`` as the server batches one call (sorted by length)."""
    ordered = [t for n in range(0, len(texts), 64) for t in sorted(texts[n : n + 64], key=len)]
    return model.throughput(ordered, batch).chunks_per_s


def embed_only(cfg: dict[str, Any], embedder: str) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "benchmarks.memory.embed_only",
        "--chunks",
        str(cfg["embed_only_chunks"]),
        "--embedder",
        embedder,
        "--batch",
        str(cfg["batch"]),
        "--seed",
        str(cfg["seed"]),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=3600, check=True)
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    log(f"  embed only ({embedder}): RSS after {out['rss_after_mib']:.0f} MiB")
    return out


def guarded(results: dict[str, Any], what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # a failed phase is reported, the others still run
        traceback.print_exc()
        results["meta"]["notes"].append(f"{what} failed: {type(exc).__name__}: {exc}")
        return None


def store_phase(cfg: dict[str, Any], work: Path, quiet: QuietWaits) -> dict[str, Any]:
    chunks = mixed_chunks(cfg["chunks"], cfg["seed"])
    warmup = mixed_chunks(cfg["chunks"] + 16, cfg["seed"])[-16:]
    servers = {
        e: RunningServer(spec(e, work / f"data-{e}", [work]), work) for e in cfg["embedders"]
    }
    try:
        for server in servers.values():
            server.start()
        return anyio.run(
            lambda: store_passes(
                servers,
                chunks,
                warmup,
                batch=cfg["batch"],
                passes=cfg["passes"],
                settle_s=cfg["settle_s"],
                quiet=quiet,
            )
        )
    finally:
        for server in servers.values():
            server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = settings(args)
    started = time.monotonic()
    quiet = QuietWaits(cfg["quiet_wait"])
    meta = new_meta(cfg, versions("onnxruntime", "numpy", "qdrant-edge-py", "fastmcp", "mcp"))
    results: dict[str, Any] = {"meta": meta}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        work = Path(tmp)
        texts = [d.text for d in mixed_chunks(cfg["raw_chunks"], cfg["seed"])]
        model = RawModel(spin=False)
        quiet("raw model")
        raw = [raw_rate(texts, cfg["raw_batch"], model)]
        if "store" in cfg["phases"]:
            results["store"] = guarded(results, "store", lambda: store_phase(cfg, work, quiet))
        quiet("raw model, again")
        raw.append(raw_rate(texts, cfg["raw_batch"], model))
        results["raw_model"] = {"chunks_per_s": max(raw), "rounds": raw, "batch": cfg["raw_batch"]}
        if "embed-only" in cfg["phases"]:
            results["embed_only"] = {
                e: guarded(results, f"embed only ({e})", functools.partial(embed_only, cfg, e))
                for e in cfg["embedders"]
            }
        if "ingest" in cfg["phases"]:
            doc = work / "docs" / "large.md"
            results["ingest_document_bytes"] = write_large_markdown(
                doc, cfg["large_doc_paragraphs"], cfg["seed"]
            )
            results["ingest"] = guarded(
                results,
                "ingest",
                functools.partial(
                    ingest_rounds,
                    cfg["embedders"],
                    doc,
                    work,
                    rounds=cfg["ingest_rounds"],
                    settle_s=cfg["settle_s"],
                    quiet=quiet,
                ),
            )
    finish_meta(meta, started, quiet)
    print(report.finish(results, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
