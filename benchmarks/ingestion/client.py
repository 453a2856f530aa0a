"""The MCP side of the ingestion suite: the server under test, tool calls, job waits.

Everything goes through the official ``mcp`` SDK client over streamable HTTP
(``benchmarks.mcp_load``), the way an MCP client sees shield-mcp.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp.client.session import ClientSession

from benchmarks.mcp_load import call, structured
from benchmarks.servers import ServerSpec, shield_spec

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
STATUS_WAIT_S = 30  # get_job_status's longest long-poll


def shield_ingest_spec(
    data_dir: Path, ingest_roots: list[Path], extra: dict[str, str] | None = None
) -> ServerSpec:
    """``shield-mcp serve --transport http`` on the embedded default (in-process orchestrator)."""
    env = {
        "SHIELD_INGEST_ROOTS": ":".join(str(p) for p in ingest_roots),
        # The benchmark's site is on 127.0.0.1: refused unless private addresses are allowed.
        "SHIELD_CRAWL_ALLOW_PRIVATE": "true",
        "SHIELD_LOG_LEVEL": "WARNING",
        "CRAWL4AI_NO_CLOUD_NOTICE": "1",
        # A stopped benchmark server has nothing worth finishing.
        "SHIELD_SHUTDOWN_GRACE_SECONDS": "1",
    }
    return shield_spec(data_dir, env | (extra or {}))


async def tool(session: ClientSession, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """A tool call that must succeed; its structured answer."""
    return structured(await call(session, name, args))


@dataclass
class Finished:
    job: dict[str, Any]
    seen_at: float  # perf_counter() when the terminal state was seen


async def wait_job(session: ClientSession, job_id: str, *, limit_s: float = 1800.0) -> Finished:
    """Long-poll ``get_job_status`` until the job is terminal.

    One waiter at a time: the server answers a long-poll as soon as the job changes, so
    the moment a job ends is seen within a round trip without polling the server hard.
    """
    deadline = time.monotonic() + limit_s
    while True:
        job = await tool(
            session, "get_job_status", {"job_id": job_id, "wait_seconds": STATUS_WAIT_S}
        )
        if job["status"] in TERMINAL:
            return Finished(job, time.perf_counter())
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} not finished after {limit_s:.0f} s: {job}")


async def wait_all(session: ClientSession, job_ids: list[str]) -> list[Finished]:
    """Every job to a terminal state, in submission order (roughly the order they finish)."""
    return [await wait_job(session, job_id) for job_id in job_ids]
