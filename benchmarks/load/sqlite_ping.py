"""CPU and wall time of one accept in the orchestrator on SQLite, with and without the
connection pre-ping (in-process, through httpx's ASGI transport, no workers), so the two
can be compared in one run. The pre-ping is off for SQLite since issue 9.

    .venv/bin/python -m benchmarks.load.sqlite_ping [--calls 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks.harness import REPO


async def _accepts(calls: int, ping: bool) -> tuple[float, float]:
    import httpx

    import orchestrator.database as database
    from orchestrator.composition import compose_orchestrator
    from orchestrator.settings import OrchestratorSettings

    if ping:  # what every SQLite checkout did before: pool_pre_ping=True
        real = database.create_async_engine  # type: ignore[attr-defined]

        def pinged(url: Any, **kwargs: Any) -> Any:
            return real(url, **(kwargs | {"pool_pre_ping": True}))

        database.create_async_engine = pinged  # type: ignore[attr-defined]
    settings = OrchestratorSettings(data_dir=tempfile.mkdtemp(), lightrag=False)
    orch = compose_orchestrator(settings, run_workers=False)
    await orch.runtime.start()

    def body(k: int) -> dict[str, Any]:
        note = base64.b64encode(f"# Note {k}\n\nhello world {k}\n".encode()).decode()
        return {"kind": "document", "content_base64": note, "filename": f"n{k}.md"}

    transport = httpx.ASGITransport(app=orch.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://o") as client:
        for k in range(30):
            assert (await client.post("/ingest-async", json=body(-1 - k))).status_code == 202
        cpu, wall = time.process_time(), time.perf_counter()
        for k in range(calls):
            assert (await client.post("/ingest-async", json=body(k))).status_code == 202
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await orch.runtime.stop()
    return 1000 * cpu / calls, 1000 * wall / calls


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load.sqlite_ping")
    p.add_argument("--calls", type=int, default=400)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--case", choices=["ping", "no-ping"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case:
        cpu, wall = asyncio.run(_accepts(args.calls, args.case == "ping"))
        print(f"{cpu:.3f} {wall:.3f}")
        return 0
    got: dict[str, list[tuple[float, float]]] = {"ping": [], "no-ping": []}
    for _ in range(args.rounds):  # alternated, so a busy moment hits both alike
        for case in got:
            argv_ = [sys.executable, "-m", "benchmarks.load.sqlite_ping", "--case", case]
            out = subprocess.run(
                [*argv_, "--calls", str(args.calls)],
                capture_output=True,
                text=True,
                cwd=REPO,
                check=True,
            ).stdout.split()
            got[case].append((float(out[0]), float(out[1])))
    for case, runs in got.items():
        cpu = sum(r[0] for r in runs) / len(runs)
        wall = sum(r[1] for r in runs) / len(runs)
        print(f"{case:8s} CPU {cpu:.2f} ms / accept, wall {wall:.2f} ms / accept ({runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
