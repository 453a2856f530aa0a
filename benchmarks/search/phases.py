"""One server's whole measurement: cold start, memory, store throughput, find latency.

Only one server runs at a time (the machine has two cores and the client needs one).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import anyio
from anyio import to_thread

from benchmarks import mcp_load
from benchmarks.corpus import Document, probe_query
from benchmarks.harness import REPO, QuietWaits, log
from benchmarks.report import percentiles
from benchmarks.search import adapters
from benchmarks.servers import RunningServer, ServerSpec, wait_idle


@dataclass
class Plan:
    sizes: list[int]
    docs: list[Document]
    queries: dict[str, list[str]]  # "find@SIZE", "warmup@SIZE", "repeat"
    repeat_rounds: int
    cold_runs: int
    probes: int
    scratch: Path
    quiet: QuietWaits  # plan.quiet("what comes next") waits for other work to stop

    @cached_property
    def index(self) -> dict[str, int]:
        """Text → corpus number, to name the hits a server returns."""
        return {d.text: n for n, d in enumerate(self.docs)}


def mib(kib: int) -> float:
    return kib / 1024


def cold_starts(spec_for: Callable[[Path], ServerSpec], plan: Plan) -> dict[str, Any]:
    """Median over ``cold_runs`` fresh spawns (each on an empty data dir)."""
    runs: list[float] = []
    tools = 0
    plan.quiet(f"{spec_for(plan.scratch).name} cold start")
    for _ in range(plan.cold_runs):
        data = Path(tempfile.mkdtemp(prefix="cold-", dir=plan.scratch))
        spec = spec_for(data)
        logfile = plan.scratch / f"{spec.name}-stdio.log"
        seconds, tools = anyio.run(mcp_load.cold_start, spec.stdio_argv, spec.env, logfile, REPO)
        runs.append(seconds)
    return {"median_s": statistics.median(runs), "runs_s": runs, "tools": tools}


def _probes(plan: Plan, size: int) -> list[tuple[str, Document]]:
    step = max(1, size // plan.probes)
    picks = [plan.docs[i] for i in range(step // 2, size, step)][: plan.probes]
    return [(probe_query(d), d) for d in picks]


async def _session_work(
    server: RunningServer,
    adapter: adapters.Adapter,
    plan: Plan,
    size: int,
    store: list[Document] | None,
    repeat: bool,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with mcp_load.connect(server.url) as conn:
        out["protocol"] = conn.protocol_version
        out["server"] = conn.server
        if store:
            stored, seconds = await adapters.timed_store(conn.session, adapter, store)
            out["store"] = {"chunks": stored, "seconds": seconds, "chunks_per_s": stored / seconds}
    # A new session after the bulk write, once the server has finished any background work
    # (indexing, compaction) it started: latency is timed on an idle server.
    out["idle_wait_s"] = await to_thread.run_sync(wait_idle, server.pid)
    await to_thread.run_sync(plan.quiet, f"{adapter.name} find @{size}")
    out["rss_kib"] = server.rss_kib()
    async with mcp_load.connect(server.url) as conn:
        s = conn.session
        out["verify"] = await adapters.verify_top_hits(s, adapter, _probes(plan, size), plan.index)
        q, w = plan.queries[f"find@{size}"], plan.queries[f"warmup@{size}"]
        out["find"] = percentiles(await adapters.time_calls(s, adapter, q, w), "_ms")
        if repeat:
            rq = plan.queries["repeat"]
            lat = await adapters.time_calls(s, adapter, rq * plan.repeat_rounds, rq)
            out["repeat"] = percentiles(lat, "_ms")
    return out


def _record(res: dict[str, Any], size: int, work: dict[str, Any], first: bool) -> None:
    res["find"][str(size)] = work["find"]
    res["verify"][str(size)] = work["verify"]
    res["rss_mib"][f"after_{size}" if first else f"at_{size}"] = mib(work["rss_kib"])
    res["protocol"] = work["protocol"]
    res["server"] = work["server"]
    if "repeat" in work:
        res["find"][f"repeat@{size}"] = work["repeat"]
    if "store" in work:
        res["store" if first else f"store_to_{size}"] = work["store"]
    log(
        f"  @{size}: find p50 {work['find']['p50_ms']:.2f} ms, p99 {work['find']['p99_ms']:.2f}"
        f" ms; top-1 {work['verify']['top1_hits']}/{work['verify']['probes']}"
    )


def bench_store_server(
    spec_for: Callable[[Path], ServerSpec],
    adapter: adapters.Adapter,
    plan: Plan,
    prefill: Callable[[Path, list[Document]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Fill to each size and time ``find`` there; one data dir for the whole run.

    The first size is always stored through the server's own store tool (that is the
    store-throughput figure). Larger sizes are stored the same way, unless ``prefill`` is
    given: then the server is stopped, ``prefill(data_dir, docs)`` writes the extra
    documents, and the server is started again.
    """
    name = adapter.name
    log(f"{name}: cold start x{plan.cold_runs} (stdio)")
    res: dict[str, Any] = {
        "cold_start": cold_starts(spec_for, plan),
        "find": {},
        "verify": {},
        "rss_mib": {},
        "prefill": {},
    }
    log(f"  median {res['cold_start']['median_s']:.3f} s")
    data = Path(tempfile.mkdtemp(prefix=f"{name}-data-", dir=plan.scratch))
    spec = spec_for(data)
    server = RunningServer(spec, plan.scratch).start()
    try:
        res["http_ready_s"] = server.ready_s
        time.sleep(1.0)
        res["rss_mib"]["idle"] = mib(server.rss_kib())
        prev = 0
        for k, size in enumerate(plan.sizes):
            new = plan.docs[prev:size]
            if k > 0 and prefill is not None:
                server.stop()
                log(f"{name}: pre-filling {len(new)} chunks directly (server stopped)")
                res["prefill"][str(size)] = prefill(data, new)
                server = RunningServer(spec, plan.scratch).start()
                new = []
            log(
                f"{name}: {'storing ' + str(len(new)) + ' chunks, ' if new else ''}"
                f"timing find @{size}"
            )
            if new:
                plan.quiet(f"{name} store @{size}")
            work = anyio.run(_session_work, server, adapter, plan, size, new, k == 0)
            _record(res, size, work, first=k == 0)
            prev = size
    except BaseException:
        log(f"{name} failed; server log tail:\n{server.log_tail()}")
        raise
    finally:
        server.stop()
    return res


async def _baseline_work(server: RunningServer, plan: Plan) -> dict[str, Any]:
    adapter = adapters.BaselineAdapter()
    size = plan.sizes[0]
    async with mcp_load.connect(server.url) as conn:
        q, w = plan.queries[f"find@{size}"], plan.queries[f"warmup@{size}"]
        lat = await adapters.time_calls(conn.session, adapter, q, w)
        return {
            "find": percentiles(lat, "_ms"),
            "protocol": conn.protocol_version,
            "server": conn.server,
        }


def bench_baseline(spec: ServerSpec, plan: Plan) -> dict[str, Any]:
    log(f"baseline: cold start x{plan.cold_runs} (stdio)")
    res: dict[str, Any] = {"cold_start": cold_starts(lambda _: spec, plan), "rss_mib": {}}
    with RunningServer(spec, plan.scratch) as server:
        time.sleep(1.0)
        res["rss_mib"]["idle"] = mib(server.rss_kib())
        plan.quiet("baseline find")
        work = anyio.run(_baseline_work, server, plan)
    # The same no-op figure stands in every size's column: the floor does not grow.
    res["find"] = {str(size): work["find"] for size in plan.sizes}
    res["find"][f"repeat@{plan.sizes[0]}"] = work["find"]
    res["protocol"], res["server"] = work["protocol"], work["server"]
    log(f"  noop p50 {work['find']['p50_ms']:.2f} ms, cold {res['cold_start']['median_s']:.3f} s")
    return res
