"""What one accept costs each process: CPU seconds per ``ingest_doc`` call, and where.

The distributed layout with no worker: the MCP server and the orchestrator do nothing but
accept (the jobs stay queued), so each one's CPU time over N accepts (utime + stime from
/proc, its children included) divided by N is its cost per accept. One MCP session makes
the N calls back to back. With ``profile`` both run under cProfile and the functions that
take the most time are kept in the results.

    .venv/bin/python -m benchmarks.load.accept_cost [--calls 300] [--profile]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import pstats
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from benchmarks.harness import log
from benchmarks.load import layouts
from benchmarks.load.mix import COLLECTION, _call, note
from benchmarks.mcp_load import connect
from benchmarks.report import percentiles
from benchmarks.servers import cpu_seconds

WARM_CALLS = 20


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _accepts(url: str, calls: int, pids: dict[str, int]) -> dict[str, Any]:
    async with connect(url) as conn:

        async def accept(k: int) -> float:
            content = base64.b64encode(note(0, k).encode()).decode()
            args = {"content_base64": content, "filename": f"n{k}.md", "collection": COLLECTION}
            start = time.perf_counter()
            answer, error = await _call(conn.session, "ingest_doc", args)
            if error is not None or answer is None or answer.get("status") != "queued":
                raise RuntimeError(f"ingest_doc was not accepted: {error or answer}")
            return (time.perf_counter() - start) * 1000

        for k in range(WARM_CALLS):  # imports, pools and caches of the first calls
            await accept(-1 - k)
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        own = _own_cpu()
        samples = [await accept(k) for k in range(calls)]
        spent = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        own = _own_cpu() - own
    return {
        "calls": calls,
        "latency_ms": percentiles(samples),
        "cpu_ms_per_accept": {name: 1000 * s / calls for name, s in spent.items()}
        | {"load generator": 1000 * own / calls},
    }


def top_functions(path: Path, lines: int = 30) -> list[str]:
    """The functions with the most own time in a cProfile file, one line each."""
    if not path.exists():
        return [f"(no profile written at {path})"]
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats("tottime").print_stats(lines)
    text = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(text) if "ncalls" in line), 0)
    return [line.rstrip() for line in text[start:] if line.strip()]


def measure(calls: int, *, profile: bool = False) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="shield-accept-cost-"))
    root = scratch / "ingest"
    root.mkdir()
    profile_dir = scratch if profile else None
    with layouts.distributed(scratch, root, workers=0, profile_dir=profile_dir) as layout:
        pids = {k: v for k, v in layout.processes.items() if not k.startswith("worker")}
        got = anyio.run(_accepts, layout.mcp_url, calls, pids)
    got["profiled"] = profile
    if profile:  # written when the processes stopped, at the end of the block above
        got["profile"] = {
            "mcp server": top_functions(scratch / "mcp-server.prof"),
            "orchestrator": top_functions(scratch / "orchestrator.prof"),
        }
    shutil.rmtree(scratch, ignore_errors=True)
    return got


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load.accept_cost", description=__doc__)
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--profile", action="store_true", help="run both processes under cProfile")
    args = p.parse_args(argv)
    log(f"accept cost: {args.calls} accepts, distributed layout without workers")
    got = measure(args.calls, profile=args.profile)
    for name, lines in got.pop("profile", {}).items():
        print(f"\n== {name}: most own time over the whole run (start-up included)")
        print("\n".join(lines))
    print(json.dumps(got, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
