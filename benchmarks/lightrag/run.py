"""LightRAG benchmarks: storage of its vectors, query latency per mode, ingestion cost, memory.

    .venv/bin/python -m benchmarks.lightrag.run [--quick] [--out DIR]      (``make bench``)

See benchmarks/README.md ("LightRAG") for what is measured and how. Nothing here asserts
on timings: the run prints the tables with ratios against baselines measured in the same
run, says whether each target is met, writes DIR/lightrag-latest.json and
DIR/lightrag-latest.md, and exits 0. A phase that fails is named in the notes and the
others still run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from benchmarks.harness import REPO, RESULTS_DIR, QuietWaits, finish_meta, log, new_meta, versions
from benchmarks.lightrag import queries, report, server
from benchmarks.lightrag.launcher import shipped_bpe_is_registered
from benchmarks.lightrag.standin import StandInProcess
from benchmarks.lightrag.texts import chunk_texts, write_markdown
from benchmarks.lightrag.vectors import corpus_vectors
from benchmarks.servers import RunningServer

ALL_VARIANTS = ("off", "on", "fixed", "llm")
VERSIONS = ("lightrag-hku", "nano-vectordb", "qdrant-edge-py", "tiktoken", "mcp", "fastmcp")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.lightrag.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="small sizes, few samples (< 3 min)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="default benchmarks/results")
    p.add_argument("--sizes", help="storage phase chunk counts (default 1000,3000; quick 200,500)")
    p.add_argument("--docs", type=int, help="Markdown files ingested (default 40; quick 5)")
    p.add_argument("--per-doc", type=int, help="chunks per file (default 30; quick 12)")
    p.add_argument("--queries", type=int, help="timed naive queries per size (30; quick 10)")
    p.add_argument("--mcp-queries", type=int, help="timed MCP calls per row (15; quick 3)")
    p.add_argument(
        "--variants",
        help="ingestion variants, of off,on,fixed,llm (default all; quick off,on,llm); "
        "fixed: on with the registered-BPE what-if",
    )
    p.add_argument(
        "--ingest-vectors",
        choices=["nano", "store"],
        help="SHIELD_LIGHTRAG_VECTORS of the ingestion servers (default: the server's own)",
    )
    p.add_argument(
        "--storage-as-shipped",
        action="store_true",
        help="storage phase with the shipped tokenizer (default: the registered-BPE fix, "
        "so the figures are the storages')",
    )
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument("--quiet-wait", type=float, help="wait for an idle machine (10 s; quick 1)")
    return p.parse_args(argv)


def settings(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    sizes = args.sizes or ("200,500" if quick else "1000,3000")
    variants = args.variants or ("off,on,llm" if quick else ",".join(ALL_VARIANTS))
    return {
        "quick": quick,
        "sizes": sorted(int(s) for s in sizes.split(",")),
        "per_source": 10,
        "sources_per_call": 4,
        "storage_queries": args.queries or (10 if quick else 30),
        "storage_warmup": 2 if quick else 5,
        "docs": args.docs or (5 if quick else 40),
        "per_doc": args.per_doc or (12 if quick else 30),
        "mcp_queries": args.mcp_queries or (3 if quick else 15),
        "mcp_warmup": 1,
        "profile_chunks": 20 if quick else 40,
        "profile_queries": 8 if quick else 20,
        "variants": [v for v in ALL_VARIANTS if v in variants.split(",")],
        "ingest_rounds": 1 if quick else 2,
        "storage_registered_bpe": not args.storage_as_shipped,
        "ingest_vectors": args.ingest_vectors,
        "seed": args.seed,
        "quiet_wait": args.quiet_wait if args.quiet_wait is not None else (1.0 if quick else 10.0),
    }


class Run:
    """The results under construction, the scratch space, and the phase bookkeeping."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.scratch = Path(tempfile.mkdtemp(prefix="shield-lightrag-bench-"))
        self.quiet = QuietWaits(cfg["quiet_wait"])
        self.failed = False
        self.results: dict[str, Any] = {
            "meta": new_meta(cfg, versions(*VERSIONS)),
            "profile": {},
            "storage": {},
            "ingest": {},
            "queries": {},
        }

    @property
    def notes(self) -> list[str]:
        notes: list[str] = self.results["meta"]["notes"]
        return notes

    def phase(self, name: str, fn: Callable[[], None]) -> None:
        log(name)
        start = time.monotonic()
        try:
            fn()
        except Exception as exc:
            self.failed = True
            log(f"  {name} failed: {type(exc).__name__}: {exc}")
            traceback.print_exc()
            self.notes.append(f"Phase '{name}' did not complete: {type(exc).__name__}: {exc}"[:600])
        log(f"  {name}: {time.monotonic() - start:.0f} s")

    def child(self, module: str, name: str, *args: str, timeout: float = 900) -> dict[str, Any]:
        """``python -m benchmarks.lightrag.<module> ...`` in a fresh process; its JSON."""
        out = self.scratch / f"{name}.json"
        data = self.scratch / f"data-{name}"
        argv = [sys.executable, "-m", f"benchmarks.lightrag.{module}", *args]
        argv += ["--seed", str(self.cfg["seed"]), "--data", str(data), "--out", str(out)]
        with (self.scratch / f"{name}.log").open("wb") as logfile:
            subprocess.run(
                argv,
                check=True,
                cwd=REPO,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        got: dict[str, Any] = json.loads(out.read_text())
        shutil.rmtree(data, ignore_errors=True)
        return got


def profile_phase(run: Run, llm_url: str) -> None:
    run.quiet("profile")
    cfg = run.cfg
    run.results["profile"] = run.child(
        "profile",
        "profile",
        "--chunks",
        str(cfg["profile_chunks"]),
        "--queries",
        str(cfg["profile_queries"]),
        "--llm-url",
        llm_url,
    )
    p = run.results["profile"]
    log(
        f"  naive p50 {p['naive']['p50_ms']:.1f} ms; with a registered BPE "
        f"{p['naive_registered_bpe']['p50_ms']:.1f} ms"
    )


def storage_phase(run: Run, kind: str) -> None:
    run.quiet(f"storage {kind}")
    cfg = run.cfg
    got = run.child(
        "storage",
        f"storage-{kind}",
        "--vectors",
        kind,
        "--sizes",
        ",".join(map(str, cfg["sizes"])),
        "--queries",
        str(cfg["storage_queries"]),
        "--warmup",
        str(cfg["storage_warmup"]),
        "--per-source",
        str(cfg["per_source"]),
        "--sources-per-call",
        str(cfg["sources_per_call"]),
        *(["--registered-bpe"] if cfg["storage_registered_bpe"] else []),
    )
    run.results["storage"][kind] = got
    for size, at in got["sizes"].items():
        log(
            f"  {kind} @{size}: {at['insert_chunks_per_s']:.0f} chunks/s, last call "
            f"{at['last_call']['seconds']:.3f} s, naive p50 {at['naive_ms']['p50_ms']:.0f} ms"
        )


def server_phase(
    run: Run, variant: str, docs: list[Path], warm: Path, standin: StandInProcess
) -> None:
    cfg = run.cfg
    data = Path(tempfile.mkdtemp(prefix=f"data-{variant}-", dir=run.scratch))
    env = server.variant_env(variant, standin.url, cfg["ingest_vectors"])
    spec = server.server_spec(data, [docs[0].parent, warm.parent], env)
    with RunningServer(spec, run.scratch, ready_timeout=180.0) as running:
        warm_s = server.warm_up(running, warm)
        run.quiet(f"ingest ({variant})")
        calls0 = standin.stats()
        rounds = [server.ingest(running, docs, data, server.COLLECTION, first=True)]
        llm_calls = _delta(calls0, standin.stats())
        for n in range(2, cfg["ingest_rounds"] + 1 if variant != "llm" else 2):
            run.quiet(f"ingest ({variant}, round {n})")
            collection = f"{server.COLLECTION}-{n}"
            rounds.append(server.ingest(running, docs, data, collection, first=False))
        got = server.best_of(rounds)
        got["warmup_s"] = warm_s
        got["env"] = env
        if variant == "llm":
            got["llm_calls"] = llm_calls
        run.results["ingest"][variant] = got
        log(
            f"  {variant}: {got['chunks']} chunks in {got['seconds']:.1f} s "
            f"({got['chunks_per_s']:.1f}/s, best of {len(rounds)}), "
            f"RSS {got['rss_after_mib']:.0f} MiB"
        )
        if got["failed"] or got["lightrag_failures"]:
            run.notes.append(
                f"Ingestion ({variant}): failed jobs {got['failed']}, LightRAG failures "
                f"{got['lightrag_failures']}"[:600]
            )
        if variant == "llm":
            run.phase("query latency through MCP", lambda: _queries(run, running, standin))


def _queries(run: Run, running: RunningServer, standin: StandInProcess) -> None:
    cfg = run.cfg
    run.quiet("queries")
    calls0 = standin.stats()
    run.results["queries"] = anyio.run(
        lambda: queries.latency(
            running.url,
            server.COLLECTION,
            llm=True,
            count=cfg["mcp_queries"],
            warmup=cfg["mcp_warmup"],
            seed=cfg["seed"],
        )
    )
    run.results["meta"]["query_chunks"] = run.results["ingest"]["llm"]["chunks"]
    run.results["meta"]["query_llm_calls"] = _delta(calls0, standin.stats())
    for key, row in run.results["queries"].items():
        log(f"  {key}: p50 {row['stats_ms'].get('p50_ms', 0):.1f} ms")


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {
        k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = Run(settings(args))
    cfg = run.cfg
    started = time.monotonic()
    texts = chunk_texts(max(cfg["sizes"][-1], cfg["docs"] * cfg["per_doc"]), cfg["seed"])

    def prepare_vectors() -> None:
        asyncio.run(corpus_vectors(texts[: cfg["sizes"][-1]]))

    run.phase("corpus vectors", prepare_vectors)
    docs = write_markdown(
        run.scratch / "docs", texts[: cfg["docs"] * cfg["per_doc"]], cfg["per_doc"]
    )
    warm = write_markdown(run.scratch / "warm", chunk_texts(2, cfg["seed"] + 1), 2)[0]
    if "fixed" in cfg["variants"] and shipped_bpe_is_registered():
        cfg["variants"].remove("fixed")
        run.notes.append(
            "The shipped tokenizer already is tiktoken's registered encoding: the "
            "registered-BPE what-if variant would be the 'on' variant again; skipped."
        )
    with StandInProcess() as standin:
        run.phase("profile of a naive query", lambda: profile_phase(run, standin.url))
        for kind in ("nano", "store"):
            run.phase(f"storage: {kind}", partial(storage_phase, run, kind))
        for variant in cfg["variants"]:
            run.phase(
                f"ingestion: {variant}", partial(server_phase, run, variant, docs, warm, standin)
            )
    finish_meta(run.results["meta"], started, run.quiet)
    paths = report.write(run.results, args.out)
    print(report.markdown(run.results))
    print(f"written: {paths[0]} and {paths[1]}")
    if run.failed:
        print(f"logs and data kept in {run.scratch}")
    else:
        shutil.rmtree(run.scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
