"""Ingestion benchmarks (issue 3): accept latency, breaker fast-fail, throughput.  ``make bench``.

    .venv/bin/python -m benchmarks.ingestion.run [--quick] [--out DIR]

See benchmarks/README.md ("Ingestion") for what is measured and how. Nothing here asserts
on timings: the run prints a table and whether each target is met, writes
DIR/ingest-latest.json and DIR/ingest-latest.md, and exits 0. A phase that cannot run
(a missing piece, a crash) is named in the notes and the others still run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import RESULTS_DIR, finish_meta
from benchmarks.ingestion import phases, report
from benchmarks.ingestion.inputs import SiteProcess, write_documents


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.ingestion.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="small inputs, few samples (~2 min)")
    p.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR,
        help="where ingest-latest.json and ingest-latest.md go (default benchmarks/results)",
    )
    p.add_argument("--pages", type=int, help="pages of the local site (default 150; quick 40)")
    p.add_argument("--copies", type=int, help="documents per format (default 5; quick 2)")
    p.add_argument("--clients", type=int, default=32, help="concurrent MCP clients (32)")
    p.add_argument("--calls", type=int, help="timed calls per tool per client (default 10)")
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument(
        "--quiet-wait",
        type=float,
        help="before each phase wait up to this many seconds for an idle machine (30; 0: no)",
    )
    return p.parse_args(argv)


def settings(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    return {
        "quick": quick,
        "site_pages": args.pages or (40 if quick else 150),
        "site_paragraphs": 6,
        "doc_copies": args.copies or (2 if quick else 5),
        "doc_paragraphs": 8 if quick else 16,
        "clients": args.clients,
        "calls": args.calls or (2 if quick else 10),
        "one_client_calls": 10 if quick else 30,
        "breaker_samples": 300 if quick else 2000,
        "mcp_breaker_samples": 40 if quick else 200,
        "raw_max_chunks": 96 if quick else 256,
        "raw_budget_s": 3.0 if quick else 8.0,
        "seed": args.seed,
        "quiet_wait": args.quiet_wait if args.quiet_wait is not None else (10.0 if quick else 30.0),
    }


def prepare_inputs(run: phases.Run) -> None:
    cfg = run.cfg
    write_documents(
        run.inputs / "docs",
        copies=cfg["doc_copies"],
        paragraphs=cfg["doc_paragraphs"],
        seed=cfg["seed"],
    )
    # Warm-up documents: one per format, text from another stretch of the corpus.
    write_documents(run.inputs / "warm", copies=1, paragraphs=2, seed=cfg["seed"], offset=100_000)
    (run.inputs / "accept").mkdir(parents=True)
    (run.inputs / "accept" / "note.md").write_text("# Note\n\nA short note for the accept test.\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = phases.Run(settings(args))
    started = time.monotonic()
    prepare_inputs(run)
    cfg = run.cfg
    with SiteProcess(cfg["site_pages"], cfg["site_paragraphs"]) as site:
        run.phase("breaker fast-fail: OrchestratorClient", lambda: phases.breaker_client(run))
        run.phase("breaker fast-fail: MCP get_job_status", lambda: phases.breaker_mcp(run))
        run.phase("accept latency", lambda: phases.accept_latency(run, site.url))
        # The naive script, the model alone and the server one after the other: the
        # ratios compare runs minutes apart at most.
        run.phase("naive sequential baseline", lambda: phases.naive_baseline(run, site.url))
        run.phase("raw model rate", lambda: phases.raw_model_rate(run))
        run.phase("throughput through MCP", lambda: phases.server_throughput(run, site.url))
        # Again at the end: the reference is the higher of the two, so a busy moment
        # during one measurement cannot flatter the server's ratio.
        run.phase("raw model rate (again)", lambda: phases.raw_model_rate(run))
    finish_meta(run.results["meta"], started, run.quiet)
    run.notes.extend(report.notes(run.results))
    paths = report.write(run.results, args.out)
    print(report.text_table(run.results))
    print(f"\nwritten: {paths[0]} and {paths[1]}")
    if run.failed:
        print(f"logs and data kept in {run.scratch}")
    else:
        shutil.rmtree(run.scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
