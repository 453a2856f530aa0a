"""Ingestion benchmarks (issue 3): accept latency, breaker fast-fail, throughput.  ``make bench``.

    .venv/bin/python -m benchmarks.ingest [--quick] [--out DIR]

See benchmarks/README.md ("Ingestion") for what is measured and how. Nothing here asserts
on timings: the run prints a table and whether each target is met, writes
DIR/ingest-latest.json and DIR/ingest-latest.md, and exits 0. A phase that cannot run
(a missing piece, a crash) is named in the notes and the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import anyio

from benchmarks import ingest_accept, ingest_breaker, ingest_report, ingest_throughput
from benchmarks.ingest_client import shield_ingest_spec
from benchmarks.ingest_inputs import SiteProcess, doc_probe, site_probe, write_documents
from benchmarks.ingest_raw import RAW_BATCHES, raw_rates
from benchmarks.phases import log
from benchmarks.servers import REPO, RunningServer, cpu_seconds, wait_idle, wait_quiet

PACED_INTERVAL_S = 1.0  # paced accept run: each client calls once a second


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="small inputs, few samples (~2 min)")
    p.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "results",
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


def _versions() -> dict[str, str]:
    out = {}
    for name in (
        "mcp",
        "fastmcp",
        "crawl4ai",
        "docling",
        "taskiq",
        "onnxruntime",
        "qdrant-edge-py",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


class Run:
    """The results under construction, the scratch space, and the phase bookkeeping."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.scratch = Path(tempfile.mkdtemp(prefix="shield-ingest-bench-"))
        self.inputs = self.scratch / "inputs"
        self.quiet_log: list[dict[str, Any]] = []
        self.failed = False
        self.results: dict[str, Any] = {
            "meta": {
                "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "settings": cfg,
                "versions": _versions(),
                "loadavg_start": os.getloadavg(),
                "notes": [],
            },
            "accept": {},
            "breaker": {},
            "throughput": {"site": {}, "docs": {}},
            "raw_model": {},
        }

    @property
    def notes(self) -> list[str]:
        notes: list[str] = self.results["meta"]["notes"]
        return notes

    def quiet(self, what: str) -> None:
        if self.cfg["quiet_wait"] <= 0:
            return
        seen = wait_quiet(max_wait=self.cfg["quiet_wait"])
        if seen["waited_s"] > 1.5:
            log(f"  waited {seen['waited_s']} s for a quiet machine (busy {seen['busy']:.0%})")
        self.quiet_log.append({"before": what, **seen})

    def phase(self, name: str, fn: Callable[[], None]) -> None:
        log(name)
        try:
            fn()
        except Exception as exc:
            self.failed = True
            log(f"  {name} failed: {type(exc).__name__}: {exc}")
            traceback.print_exc()
            self.notes.append(f"Phase '{name}' did not complete: {type(exc).__name__}: {exc}"[:600])

    def server(self, extra: dict[str, str] | None = None) -> RunningServer:
        data = Path(tempfile.mkdtemp(prefix="data-", dir=self.scratch))
        spec = shield_ingest_spec(data, [self.inputs], extra)
        return RunningServer(spec, self.scratch, ready_timeout=180.0)


# -- phases ------------------------------------------------------------------------------


def breaker_client(run: Run) -> None:
    run.quiet("breaker (client)")
    got = anyio.run(ingest_breaker.client_fast_fail, run.cfg["breaker_samples"])
    got["stats_us"] = ingest_report.percentiles(got.pop("samples_us"))
    got["opening_us"] = ingest_report.percentiles(got.pop("opening_calls_us"))
    run.results["breaker"]["client"] = got


def breaker_mcp(run: Run) -> None:
    extra = {"SHIELD_ORCHESTRATOR_URL": ingest_breaker.dead_orchestrator_url()}
    with run.server(extra) as server:
        run.quiet("breaker (MCP)")
        got = anyio.run(ingest_breaker.mcp_fast_fail, server.url, run.cfg["mcp_breaker_samples"])
    got["stats_ms"] = ingest_report.percentiles(got.pop("samples_ms"))
    got["opening_ms"] = ingest_report.percentiles(got.pop("opening_calls_ms"))
    run.results["breaker"]["mcp"] = got


def naive(run: Run, site_url: str) -> None:
    run.quiet("naive baseline")
    out = run.scratch / "naive.json"
    cfg = run.cfg
    argv = [sys.executable, "-m", "benchmarks.ingest_naive", "--site", site_url]
    argv += ["--max-pages", str(_max_pages(cfg)), "--max-depth", str(_max_depth(cfg))]
    argv += ["--docs", str(run.inputs / "docs"), "--warm", str(run.inputs / "warm")]
    argv += ["--data", str(run.scratch / "naive"), "--out", str(out)]
    with (run.scratch / "naive.log").open("wb") as logfile:
        subprocess.run(argv, check=True, cwd=REPO, stdout=logfile, stderr=subprocess.STDOUT)
    got = json.loads(out.read_text())
    for part, unit in (("site", "pages"), ("docs", "documents")):
        texts = got[part].pop("chunk_texts")
        (run.scratch / f"chunks-{part}.json").write_text(json.dumps(texts))
        run.results["throughput"][part]["naive"] = ingest_report.rates(got[part], unit)
    run.results["throughput"]["naive_setup_s"] = got.get("setup_s")


def raw_model(run: Run) -> None:
    run.quiet("raw model")
    raw_rates(run.scratch, run.cfg, run.results["raw_model"])


def accept(run: Run, site_url: str) -> None:
    doc = run.inputs / "accept" / "note.md"
    cfg = run.cfg
    with run.server() as server:
        for key, clients, calls, interval in (
            ("one", 1, cfg["one_client_calls"], None),
            ("many", cfg["clients"], cfg["calls"], None),
            ("paced", cfg["clients"], cfg["calls"], PACED_INTERVAL_S),
        ):
            run.quiet(f"accept latency, {clients} clients")
            got = anyio.run(
                _accept, server.url, clients, calls, site_url, str(doc), key == "one", interval
            )
            got["stats_ms"] = {
                name: ingest_report.percentiles(samples)
                for name, samples in got.pop("samples_ms").items()
            }
            run.results["accept"][key] = got
            p99 = {k: round(v.get("p99", 0), 1) for k, v in got["stats_ms"].items()}
            log(f"  {clients} clients: p99 {p99} ms")


async def _accept(
    url: str,
    clients: int,
    calls: int,
    site_url: str,
    doc: str,
    settle: bool,
    interval: float | None,
) -> dict[str, Any]:
    return await ingest_accept.accept_latency(
        url,
        clients=clients,
        calls=calls,
        site_url=site_url,
        doc_path=doc,
        settle=settle,
        interval_s=interval,
    )


def throughput(run: Run, site_url: str) -> None:
    cfg = run.cfg
    warm = sorted((run.inputs / "warm").iterdir())
    docs = sorted((run.inputs / "docs").iterdir())
    tp = run.results["throughput"]
    with run.server() as server:
        tp["warmup_s"] = anyio.run(ingest_throughput.warm_up, server.url, site_url, warm)
        for part, unit in (("site", "pages"), ("docs", "documents")):
            wait_idle(server.pid, timeout=60)
            run.quiet(f"throughput ({part})")
            cpu0 = cpu_seconds(server.pid)
            if part == "site":
                got = anyio.run(_crawl, server.url, site_url, cfg)
            else:
                probe = doc_probe(cfg["doc_paragraphs"], cfg["seed"])
                got = anyio.run(_ingest, server.url, docs, probe)
            got["server_cpu_s"] = cpu_seconds(server.pid) - cpu0
            got["server_rss_mib"] = server.rss_kib() / 1024
            tp[part]["server"] = ingest_report.rates(got, unit)
            n, chunks, secs = got.get(unit), got.get("chunks"), got["seconds"]
            log(f"  {part}: {n} {unit}, {chunks} chunks, {secs:.1f} s")


async def _crawl(url: str, site_url: str, cfg: dict[str, Any]) -> dict[str, Any]:
    return await ingest_throughput.crawl_site(
        url,
        site_url,
        max_pages=_max_pages(cfg),
        max_depth=_max_depth(cfg),
        probe=site_probe(cfg["site_pages"]),
    )


async def _ingest(url: str, docs: list[Path], probe: tuple[str, str]) -> dict[str, Any]:
    return await ingest_throughput.ingest_folder(url, docs, probe=probe)


def _max_pages(cfg: dict[str, Any]) -> int:
    # Room for the index and the site's 404/403/slow/redirect links besides its pages.
    return int(cfg["site_pages"]) + 10


def _max_depth(cfg: dict[str, Any]) -> int:
    from tests.sites import page_depth

    return page_depth(int(cfg["site_pages"]))


# -- the run -----------------------------------------------------------------------------


def prepare_inputs(run: Run) -> None:
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
    run = Run(settings(args))
    started = time.monotonic()
    prepare_inputs(run)
    cfg = run.cfg
    with SiteProcess(cfg["site_pages"], cfg["site_paragraphs"]) as site:
        run.phase("breaker fast-fail: OrchestratorClient", lambda: breaker_client(run))
        run.phase("breaker fast-fail: MCP get_job_status", lambda: breaker_mcp(run))
        run.phase("accept latency", lambda: accept(run, site.url))
        # The naive script, the model alone and the server one after the other: the
        # ratios compare runs minutes apart at most.
        run.phase("naive sequential baseline", lambda: naive(run, site.url))
        run.phase("raw model rate", lambda: raw_model(run))
        run.phase("throughput through MCP", lambda: throughput(run, site.url))
        # Again at the end: the reference is the higher of the two, so a busy moment
        # during one measurement cannot flatter the server's ratio.
        run.phase("raw model rate (again)", lambda: raw_model(run))
    meta = run.results["meta"]
    meta["duration_s"] = time.monotonic() - started
    meta["loadavg_end"] = os.getloadavg()
    meta["quiet_waits"] = run.quiet_log
    run.notes.extend(_notes(run))
    paths = ingest_report.write(run.results, args.out)
    print(ingest_report.text_table(run.results))
    print(f"\nwritten: {paths[0]} and {paths[1]}")
    if run.failed:
        print(f"logs and data kept in {run.scratch}")
    else:
        shutil.rmtree(run.scratch, ignore_errors=True)
    return 0


def _notes(run: Run) -> list[str]:
    cfg = run.cfg
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
        "Naive baseline: benchmarks/ingest_naive.py, a separate process: crawl4ai "
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
    tp = run.results["throughput"]
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


if __name__ == "__main__":
    sys.exit(main())
