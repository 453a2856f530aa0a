"""Does a job's embedding slow a query down? Query latency of the embedded model while a
job embeds batches back to back, with the job's thread niced (SHIELD_BACKGROUND_NICE) or
not, and with no job at all. Each case runs in a fresh interpreter (a lowered thread
cannot be raised back), one after the other.

    .venv/bin/python -m benchmarks.load.priority [--queries 200] [--nice 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from typing import Any

from benchmarks.corpus import make_documents, make_query_sets
from benchmarks.harness import REPO, log, wait_quiet
from benchmarks.load.report import latency


async def _case(nice: int, queries: int, job: bool) -> dict[str, Any]:
    from knowledge.embeddings.local import LocalEmbedder
    from shield_common import priority

    priority.configure(nice)
    embedder = LocalEmbedder()
    texts = [d.text for d in make_documents(16)]
    asks = make_query_sets({"q": queries + 5})["q"]
    await embedder.embed_documents(asks[:5])
    batches = 0
    stop = asyncio.Event()

    async def background_job() -> None:
        nonlocal batches
        with priority.background():
            while not stop.is_set():
                await embedder.embed_documents(texts)
                batches += 1

    task = asyncio.create_task(background_job()) if job else None
    await asyncio.sleep(0.5 if job else 0)
    samples = []
    began = time.perf_counter()
    for query in asks[5:]:
        start = time.perf_counter()
        await embedder.embed_documents([query])
        samples.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(0.01)  # a query every 10 ms or so, not back to back
    wall = time.perf_counter() - began
    stop.set()
    if task is not None:
        await task
    await embedder.aclose()
    return {"query_ms": latency(samples), "job_chunks_per_s": batches * len(texts) / wall}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load.priority", description=__doc__)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--nice", type=int, default=10)
    p.add_argument("--case", help=argparse.SUPPRESS)  # "nice,job": one case, in a child
    args = p.parse_args(argv)
    if args.case:
        nice, job = args.case.split(",")
        print(json.dumps(asyncio.run(_case(int(nice), args.queries, job == "1"))))
        return 0
    out = {}
    for name, case in (
        ("no job", "0,0"),
        ("job at nice 0", "0,1"),
        (f"job at nice {args.nice}", f"{args.nice},1"),
    ):
        quiet = wait_quiet(max_wait=30)
        argv_ = [sys.executable, "-m", "benchmarks.load.priority", "--case", case]
        argv_ += ["--queries", str(args.queries)]
        done = subprocess.run(argv_, capture_output=True, text=True, cwd=REPO, check=True)
        out[name] = json.loads(done.stdout.strip().splitlines()[-1]) | {"quiet": quiet}
        q = out[name]["query_ms"]
        log(
            f"{name}: query p50 {q['p50']:.1f} / p99 {q['p99']:.1f} ms, job "
            f"{out[name]['job_chunks_per_s']:.1f} chunks/s (machine busy {quiet['busy']:.0%})"
        )
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
