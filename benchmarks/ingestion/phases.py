"""The ingestion suite's phases: each one's server, quiet wait, measurement and results.

``Run`` holds the results under construction and the scratch space; each phase function
measures one thing (with the modules beside this one) and files its figures in
``run.results``. A phase that raises is named in the notes; the others still run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from benchmarks.harness import REPO, QuietWaits, log, new_meta, versions
from benchmarks.ingestion import accept, breaker, report, throughput
from benchmarks.ingestion.client import shield_ingest_spec
from benchmarks.ingestion.inputs import doc_probe, site_probe
from benchmarks.ingestion.raw import raw_rates
from benchmarks.report import percentiles
from benchmarks.servers import RunningServer, cpu_seconds, wait_idle
from benchmarks.site import page_depth

VERSIONS = ("mcp", "fastmcp", "crawl4ai", "docling", "taskiq", "onnxruntime", "qdrant-edge-py")


class Run:
    """The results under construction, the scratch space, and the phase bookkeeping."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.scratch = Path(tempfile.mkdtemp(prefix="shield-ingest-bench-"))
        self.inputs = self.scratch / "inputs"
        self.quiet = QuietWaits(cfg["quiet_wait"])  # run.quiet("what comes next")
        self.failed = False
        self.results: dict[str, Any] = {
            "meta": new_meta(cfg, versions(*VERSIONS)),
            "accept": {},
            "breaker": {},
            "throughput": {"site": {}, "docs": {}},
            "raw_model": {},
        }

    @property
    def notes(self) -> list[str]:
        notes: list[str] = self.results["meta"]["notes"]
        return notes

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


def breaker_client(run: Run) -> None:
    run.quiet("breaker (client)")
    got = anyio.run(breaker.client_fast_fail, run.cfg["breaker_samples"])
    got["stats_us"] = percentiles(got.pop("samples_us"))
    got["opening_us"] = percentiles(got.pop("opening_calls_us"))
    run.results["breaker"]["client"] = got


def breaker_mcp(run: Run) -> None:
    extra = {"SHIELD_ORCHESTRATOR_URL": breaker.dead_orchestrator_url()}
    with run.server(extra) as server:
        run.quiet("breaker (MCP)")
        got = anyio.run(breaker.mcp_fast_fail, server.url, run.cfg["mcp_breaker_samples"])
    got["stats_ms"] = percentiles(got.pop("samples_ms"))
    got["opening_ms"] = percentiles(got.pop("opening_calls_ms"))
    run.results["breaker"]["mcp"] = got


def naive_baseline(run: Run, site_url: str) -> None:
    run.quiet("naive baseline")
    out = run.scratch / "naive.json"
    cfg = run.cfg
    argv = [sys.executable, "-m", "benchmarks.ingestion.naive", "--site", site_url]
    argv += ["--max-pages", str(_max_pages(cfg)), "--max-depth", str(_max_depth(cfg))]
    argv += ["--docs", str(run.inputs / "docs"), "--warm", str(run.inputs / "warm")]
    argv += ["--data", str(run.scratch / "naive"), "--out", str(out)]
    with (run.scratch / "naive.log").open("wb") as logfile:
        subprocess.run(argv, check=True, cwd=REPO, stdout=logfile, stderr=subprocess.STDOUT)
    got = json.loads(out.read_text())
    for part, unit in (("site", "pages"), ("docs", "documents")):
        texts = got[part].pop("chunk_texts")
        (run.scratch / f"chunks-{part}.json").write_text(json.dumps(texts))
        run.results["throughput"][part]["naive"] = report.rates(got[part], unit)
    run.results["throughput"]["naive_setup_s"] = got.get("setup_s")


def raw_model_rate(run: Run) -> None:
    run.quiet("raw model")
    raw_rates(run.scratch, run.cfg, run.results["raw_model"])


def accept_latency(run: Run, site_url: str) -> None:
    doc = run.inputs / "accept" / "note.md"
    cfg = run.cfg
    with run.server() as server:
        for key, clients, calls, interval in (
            ("one", 1, cfg["one_client_calls"], None),
            ("many", cfg["clients"], cfg["calls"], None),
            ("paced", cfg["clients"], cfg["calls"], accept.PACED_INTERVAL_S),
        ):
            run.quiet(f"accept latency, {clients} clients")
            got = anyio.run(
                partial(
                    accept.accept_latency,
                    server.url,
                    clients=clients,
                    calls=calls,
                    site_url=site_url,
                    doc_path=str(doc),
                    settle=key == "one",
                    interval_s=interval,
                )
            )
            samples = got.pop("samples_ms")
            got["stats_ms"] = {name: percentiles(s) for name, s in samples.items()}
            run.results["accept"][key] = got
            p99 = {k: round(v.get("p99", 0), 1) for k, v in got["stats_ms"].items()}
            log(f"  {clients} clients: p99 {p99} ms")


def server_throughput(run: Run, site_url: str) -> None:
    cfg = run.cfg
    warm = sorted((run.inputs / "warm").iterdir())
    docs = sorted((run.inputs / "docs").iterdir())
    tp = run.results["throughput"]
    with run.server() as server:
        tp["warmup_s"] = anyio.run(throughput.warm_up, server.url, site_url, warm)
        for part, unit in (("site", "pages"), ("docs", "documents")):
            wait_idle(server.pid, timeout=60)
            run.quiet(f"throughput ({part})")
            cpu0 = cpu_seconds(server.pid)
            if part == "site":
                got = anyio.run(
                    partial(
                        throughput.crawl_site,
                        server.url,
                        site_url,
                        max_pages=_max_pages(cfg),
                        max_depth=_max_depth(cfg),
                        probe=site_probe(cfg["site_pages"]),
                    )
                )
            else:
                probe = doc_probe(cfg["doc_paragraphs"], cfg["seed"])
                got = anyio.run(partial(throughput.ingest_folder, server.url, docs, probe=probe))
            got["server_cpu_s"] = cpu_seconds(server.pid) - cpu0
            got["server_rss_mib"] = server.rss_kib() / 1024
            tp[part]["server"] = report.rates(got, unit)
            n, chunks, secs = got.get(unit), got.get("chunks"), got["seconds"]
            log(f"  {part}: {n} {unit}, {chunks} chunks, {secs:.1f} s")


def _max_pages(cfg: dict[str, Any]) -> int:
    # Room for the index and the site's 404/403/slow/redirect links besides its pages.
    return int(cfg["site_pages"]) + 10


def _max_depth(cfg: dict[str, Any]) -> int:
    return page_depth(int(cfg["site_pages"]))
