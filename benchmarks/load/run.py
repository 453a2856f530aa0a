"""Load benchmark (issue 9): N MCP sessions of mixed calls on each layout.  ``make bench``.

    .venv/bin/python -m benchmarks.load.run [--quick] [--layout embedded|distributed|both]
        [--sessions 32] [--calls 500] [--rate 1.0]

Each session (official ``mcp`` client, streamable HTTP) makes ``calls`` calls paced at
``rate`` per second: store batches, filtered finds, paging, ``lightrag_query`` naive,
``get_job_status`` on its live jobs, and a crawl or an ingest every 25 calls (see
mix.py). Per layout: p50/p95/p99 per tool, errors, the accept p99 of crawl_web/ingest_doc,
each process's RSS after warm-up (the first tenth of the calls) and at the end, its CPU
time; then how the jobs started under load ended. Before the layouts, the CPU one accept
costs each process (accept_cost.py). Nothing asserts on timing: the run prints each
target met or not, writes DIR/load-latest.json and .md, and exits 0.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from benchmarks.harness import RESULTS_DIR, QuietWaits, finish_meta, log, new_meta, versions
from benchmarks.ingestion.inputs import SiteProcess
from benchmarks.load import accept_cost, layouts, report
from benchmarks.load.mix import Plan, drain, prefill, run_load
from benchmarks.report import note_busy_phases
from benchmarks.servers import cpu_seconds, rss_kib, wait_idle

WARM_FRACTION = 0.1  # RSS "after warm-up": once a tenth of the calls are done
VERSIONS = ("mcp", "fastmcp", "onnxruntime", "qdrant-edge-py", "lightrag-hku", "taskiq")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.load.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="8 sessions × 40 calls (~3 min)")
    p.add_argument("--layout", choices=["embedded", "distributed", "both"], default="both")
    p.add_argument("--sessions", type=int, help="concurrent MCP sessions (32; quick 8)")
    p.add_argument("--calls", type=int, help="timed calls per session (500; quick 40)")
    p.add_argument("--rate", type=float, default=1.0, help="calls per second per session")
    p.add_argument("--workers", type=int, default=2, help="worker processes (distributed)")
    p.add_argument("--accept-calls", type=int, help="accepts timed for their CPU (300; quick 100)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR)
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument(
        "--quiet-wait",
        type=float,
        help="before each phase wait up to this many seconds for an idle machine (60; quick 10)",
    )
    return p.parse_args(argv)


def settings(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    return {
        "quick": quick,
        "layouts": ["embedded", "distributed"] if args.layout == "both" else [args.layout],
        "sessions": args.sessions or (8 if quick else 32),
        "calls": args.calls or (40 if quick else 500),
        "rate": args.rate,
        "workers": args.workers,
        "accept_calls": args.accept_calls or (100 if quick else 300),
        "seed": args.seed,
        "quiet_wait": args.quiet_wait if args.quiet_wait is not None else (10.0 if quick else 60.0),
    }


class Sampler:
    """RSS of each process of a layout (its children included), every second, in a thread."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak: dict[str, int] = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def snapshot(self) -> dict[str, int]:
        return {name: rss_kib(pid) for name, pid in self.pids.items()}

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for name, kib in self.snapshot().items():
                self.peak[name] = max(self.peak[name], kib)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure_layout(
    cfg: dict[str, Any], layout: layouts.Layout, site_url: str, quiet: QuietWaits
) -> dict[str, Any]:
    plan = Plan(
        sessions=cfg["sessions"],
        calls=cfg["calls"],
        rate=cfg["rate"],
        lightrag=layout.lightrag,
        seed=cfg["seed"],
    )
    out: dict[str, Any] = {"notes": layout.notes}
    log(f"  {layout.name}: prefill (a stored corpus, one job of each kind)")
    out["prefill_problems"] = anyio.run(prefill, layout.mcp_url, plan, site_url)
    for pid in layout.processes.values():
        wait_idle(pid, timeout=60)
    quiet(f"{layout.name} load")
    warm: dict[str, Any] = {}
    pids = layout.processes

    async def on_progress(done: float) -> None:
        if not warm and done >= WARM_FRACTION:
            warm["rss"] = sampler.snapshot()
            warm["cpu"] = {name: cpu_seconds(pid) for name, pid in pids.items()}
            warm["at"] = time.perf_counter()

    total = plan.sessions * plan.calls
    log(f"  {layout.name}: {plan.sessions} sessions × {plan.calls} calls at {plan.rate}/s")
    with Sampler(pids) as sampler:
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        rec = anyio.run(partial(run_load, layout.mcp_url, plan, site_url, on_progress=on_progress))
        cpu1 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        end_rss = sampler.snapshot()
    wall = rec.ended - rec.began
    out["wall_s"] = wall
    out["calls_per_s"] = total / wall if wall else None
    out["tools"] = {
        label: {
            "latency_ms": report.latency(rec.samples.get(label, [])),
            "errors": len(rec.errors.get(label, [])),
            "first_errors": rec.errors.get(label, [])[:5],
        }
        for label in sorted(set(rec.samples) | set(rec.errors))
    }
    out["errors"] = sum(len(e) for e in rec.errors.values())
    out["accept_ms"] = report.latency([s for t in report.JOB_TOOLS for s in rec.samples.get(t, [])])
    out["rss"] = {}
    for name in pids:
        w = warm.get("rss", {}).get(name, 0) / 1024
        e = end_rss[name] / 1024
        out["rss"][name] = {
            "warm_mib": w,
            "end_mib": e,
            "peak_mib": sampler.peak[name] / 1024,
            "growth_pct": 100 * (e - w) / w if w else None,
        }
    out["cpu"] = {
        name: {
            "seconds": cpu1[name] - cpu0[name],
            "ms_per_call": 1000 * (cpu1[name] - cpu0[name]) / total,
        }
        for name in pids
    }
    log(f"  {layout.name}: {out['errors']} errors; waiting for {len(rec.jobs)} jobs to end")
    out["jobs"] = anyio.run(drain, layout.mcp_url, rec.jobs, 600.0)
    out["jobs"]["started"] = len(rec.jobs)
    out["rss_after_jobs_mib"] = {n: kib / 1024 for n, kib in Sampler(pids).snapshot().items()}
    p99 = {k: round(v["latency_ms"].get("p99", 0), 1) for k, v in out["tools"].items()}
    log(f"  {layout.name}: p99 ms {p99}; jobs {out['jobs']['states']}")
    return out


def _layout(
    name: str, cfg: dict[str, Any], scratch: Path, root: Path
) -> AbstractContextManager[layouts.Layout]:
    if name == "embedded":
        return layouts.embedded(scratch, root)
    return layouts.distributed(scratch, root, workers=cfg["workers"])


def _phase(results: dict[str, Any], name: str, fn: Callable[[], None]) -> bool:
    log(name)
    try:
        fn()
    except Exception as exc:
        traceback.print_exc()
        results["meta"]["notes"].append(f"Phase '{name}' did not complete: {exc}"[:600])
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = settings(args)
    started = time.monotonic()
    quiet = QuietWaits(cfg["quiet_wait"])
    results: dict[str, Any] = {
        "meta": new_meta(cfg, versions(*VERSIONS)),
        "accept_cost": {},
        "layouts": {},
    }
    scratch = Path(tempfile.mkdtemp(prefix="shield-load-bench-"))
    root = scratch / "ingest"
    root.mkdir()
    ok = True

    def cost() -> None:
        quiet("accept cost")
        results["accept_cost"] = accept_cost.measure(cfg["accept_calls"])

    ok &= _phase(results, "accept cost (distributed, no workers)", cost)
    with SiteProcess(100, 3) as site:
        for name in cfg["layouts"]:

            def one(name: str = name) -> None:
                with _layout(name, cfg, scratch, root) as layout:
                    results["layouts"][name] = measure_layout(cfg, layout, site.url, quiet)

            ok &= _phase(results, f"layout: {name}", one)
    finish_meta(results["meta"], started, quiet)
    waits = results["meta"]["quiet_waits"]
    results["meta"]["quiet"] = all(w.get("busy", 0) <= 0.15 for w in waits) if waits else None
    note_busy_phases(results)
    for layout in results["layouts"].values():
        results["meta"]["notes"].extend(layout.get("notes", []))
    paths = report.write(results, args.out)
    print(report.text_table(results))
    print(f"\nwritten: {paths[0]} and {paths[1]}")
    if ok:
        shutil.rmtree(scratch, ignore_errors=True)
    else:
        print(f"logs kept in {scratch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
