"""Breaker fast-fail: how quickly a call fails once the orchestrator's breaker is open.

Client: ``OrchestratorClient.get_job`` against a port nothing listens on, with its own
``Breaker`` (threshold 5). Five calls fail on a refused connection and open it; the next
calls must fail fast with ``DependencyUnavailable`` (carrying ``retry_after``) without
touching the network. Timed one at a time with ``perf_counter_ns``.

MCP: ``get_job_status`` through a ``shield-mcp serve`` whose ``SHIELD_ORCHESTRATOR_URL``
points at a dead port: the tool error a client sees, round trip included.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.mcp_load import connect, texts
from benchmarks.servers import free_port

THRESHOLD = 5
# A well-formed job id (the client refuses anything else before it reaches the breaker).
JOB_ID = "00000000-0000-4000-8000-00000000be4c"


async def client_fast_fail(samples: int, warmup: int = 100) -> dict[str, Any]:
    from knowledge.breakers import Breaker
    from knowledge.errors import DependencyUnavailable
    from orchestrator_client.client import OrchestratorClient

    port = free_port()  # bound and released: nothing listens there
    breaker = Breaker("bench-orchestrator", failure_threshold=THRESHOLD, recovery_seconds=3600.0)
    client = OrchestratorClient(f"http://127.0.0.1:{port}", timeout=5.0, breaker=breaker)
    opening_us: list[float] = []
    fast_us: list[float] = []
    unexpected: list[str] = []
    retry_after: float | None = None
    try:
        for _ in range(THRESHOLD):
            start = time.perf_counter_ns()
            try:
                await client.get_job(JOB_ID)
                unexpected.append("a call to a dead port succeeded")
            except DependencyUnavailable:
                pass
            opening_us.append((time.perf_counter_ns() - start) / 1000)
        state_after_opening = breaker.state
        for n in range(warmup + samples):
            start = time.perf_counter_ns()
            try:
                await client.get_job(JOB_ID)
                unexpected.append("a call through an open breaker succeeded")
                continue
            except DependencyUnavailable as exc:
                elapsed = (time.perf_counter_ns() - start) / 1000
                retry_after = exc.retry_after
            except Exception as exc:
                unexpected.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            if n >= warmup:
                fast_us.append(elapsed)
    finally:
        await client.aclose()
    return {
        "threshold": THRESHOLD,
        "state_after_opening": state_after_opening,
        "opening_calls_us": opening_us,
        "samples_us": fast_us,
        "retry_after_s": retry_after,
        "unexpected": unexpected[:10],
    }


async def mcp_fast_fail(url: str, samples: int) -> dict[str, Any]:
    """``get_job_status`` against a server whose orchestrator is down."""
    opening_ms: list[float] = []
    fast_ms: list[float] = []
    message = ""
    not_errors = 0
    async with connect(url) as conn:
        for n in range(THRESHOLD + 10 + samples):
            start = time.perf_counter()
            result = await conn.session.call_tool("get_job_status", {"job_id": JOB_ID})
            elapsed = (time.perf_counter() - start) * 1000
            if not result.is_error:
                not_errors += 1
                continue
            message = " ".join(texts(result))
            if n < THRESHOLD:
                opening_ms.append(elapsed)
            elif n >= THRESHOLD + 10:  # after the opening calls and a short warm-up
                fast_ms.append(elapsed)
    return {
        "opening_calls_ms": opening_ms,
        "samples_ms": fast_ms,
        "last_error": message[:400],
        "not_errors": not_errors,
    }


def dead_orchestrator_url() -> str:
    return f"http://127.0.0.1:{free_port()}"
