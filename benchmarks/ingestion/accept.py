"""Accept latency of ``crawl_web`` and ``ingest_doc``: many MCP clients at once.

Each client is its own MCP session (own streamable-HTTP connection, ``initialize``
handshake) in this process. All start together; each makes its calls back to back (a
closed loop, no think time), alternating the two tools. A call's time is the
``ClientSession.call_tool`` round trip until the 202 body (job id, ``queued``) is back.
"""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from typing import Any

import anyio

from benchmarks.ingestion.client import tool, wait_job
from benchmarks.mcp_load import connect

TOOLS = ("crawl_web", "ingest_doc")
PACED_INTERVAL_S = 1.0  # the paced run: each client starts a call once a second


def tool_args(name: str, site_url: str, doc_path: str) -> dict[str, Any]:
    if name == "crawl_web":
        return {"url": site_url, "max_pages": 1, "max_depth": 0, "collection": "accept"}
    return {"source": doc_path, "collection": "accept"}


async def accept_latency(
    url: str,
    *,
    clients: int,
    calls: int,
    site_url: str,
    doc_path: str,
    settle: bool = False,
    interval_s: float | None = None,
) -> dict[str, Any]:
    """``calls`` timed calls of each tool per client; returns samples in ms per tool.

    ``settle``: after each call, wait (untimed) until its job has finished, so every call
    meets an idle server: the accept path's own cost, without the load of earlier jobs.
    ``interval_s``: paced instead of back to back: each client starts one call every
    ``interval_s`` seconds (starts spread evenly over the first interval), so the offered
    load is ``clients / interval_s`` calls per second whatever the latency.
    """
    samples: dict[str, list[float]] = {name: [] for name in TOOLS}
    errors: list[str] = []
    async with AsyncExitStack() as stack:
        sessions = [(await stack.enter_async_context(connect(url))).session for _ in range(clients)]
        # One untimed call of each tool per session: the first ones pay for start-up
        # (the in-process orchestrator finishes starting on first use).
        for session in sessions:
            for name in TOOLS:
                await tool(session, name, tool_args(name, site_url, doc_path))

        async def client(n: int) -> None:
            session = sessions[n]
            for k in range(2 * calls):
                name = TOOLS[(n + k) % 2]
                if interval_s is not None:
                    due = began + interval_s * (k + n / clients)
                    await anyio.sleep(max(0.0, due - time.perf_counter()))
                start = time.perf_counter()
                try:
                    answer = await tool(session, name, tool_args(name, site_url, doc_path))
                except Exception as exc:
                    errors.append(f"{name}: {exc}"[:300])
                    continue
                elapsed = (time.perf_counter() - start) * 1000
                if answer.get("status") != "queued" or not answer.get("job_id"):
                    errors.append(f"{name}: unexpected answer {answer}"[:300])
                    continue
                samples[name].append(elapsed)
                if settle:
                    await wait_job(session, str(answer["job_id"]))

        began = time.perf_counter()
        async with anyio.create_task_group() as group:
            for n in range(clients):
                group.start_soon(client, n)
        wall = time.perf_counter() - began
    accepted = sum(len(s) for s in samples.values())
    return {
        "clients": clients,
        "settled": settle,
        "interval_s": interval_s,
        "calls_per_tool_per_client": calls,
        "samples_ms": samples,
        "errors": errors[:20],
        "error_count": len(errors),
        "accepted": accepted,
        "accepted_per_s": accepted / wall if wall else None,
        "wall_s": wall,
    }
