"""The orchestrator SIGKILLed and started again while the MCP server keeps serving.

`shield-mcp serve --transport http` with SHIELD_ORCHESTRATOR_URL, and `shield-mcp
orchestrator` (SQLite job store, workers in-process) on a port kept across its restart. As
the README says: while it is down the job tools say so and when to retry, the breaker opens
after SHIELD_BREAKER_FAILURE_THRESHOLD failures and then fails fast, one trial call after
SHIELD_BREAKER_RECOVERY_SECONDS closes it again; qdrant_store / qdrant_find never depend on
the orchestrator; the job it was running is run again after the restart.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client

from tests.sites import serve_site
from tests.support import HttpProcess, ServerProcess, free_port, server_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

HANG = 120.0  # guards against a hang only
RECOVERY = 3


def orchestrator(port: int, data_dir: Path, log: Path, env: dict[str, str]) -> HttpProcess:
    proc = HttpProcess(
        lambda _: ["orchestrator", "--host", "127.0.0.1", "--port", str(port)],
        server_env(data_dir, **env),
        log,
    )
    proc.port, proc.url = port, f"http://127.0.0.1:{port}"  # the same URL after a restart
    proc.wait_ready(timeout=60)
    return proc


def breaker_state(server: ServerProcess) -> float:
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    found = re.search(r'circuit_breaker_state\{breaker="orchestrator"\} (\S+)', metrics)
    assert found, metrics
    return float(found.group(1))


async def call(client: Client, tool: str, **arguments: Any) -> tuple[bool, str, Any]:
    result = await client.call_tool(tool, arguments, raise_on_error=False)
    text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
    return result.is_error, text, result.structured_content


async def test_mcp_keeps_serving_the_breaker_opens_and_recovers_and_the_job_resumes(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {
        "SHIELD_CRAWL_ALLOW_PRIVATE": "true",  # the test site runs on 127.0.0.1
        "SHIELD_CRAWL_PAGE_TIMEOUT": "90",  # the held page answers after the restart
        "SHIELD_LOG_LEVEL": "INFO",
    }
    orch_dir = tmp_path / "orchestrator-data"
    orch_dir.mkdir()
    orch = orchestrator(port, orch_dir, tmp_path / "orchestrator-1.log", env)
    (tmp_path / "server-data").mkdir()
    server = ServerProcess(
        tmp_path / "server-data",
        tmp_path / "server.log",
        SHIELD_ORCHESTRATOR_URL=orch.url,
        SHIELD_ORCHESTRATOR_TIMEOUT="3",
        SHIELD_BREAKER_FAILURE_THRESHOLD="2",
        SHIELD_BREAKER_RECOVERY_SECONDS=str(RECOVERY),
    )
    hold = threading.Event()
    try:
        server.wait_ready()
        with serve_site(pages=4, hold=hold) as site:
            async with Client(f"{server.url}/mcp") as client:
                error, text, accepted = await call(client, "crawl_web", url=site.url, max_pages=4)
                assert not error, text
                job_id = accepted["job_id"]
                deadline = time.monotonic() + HANG
                while (await call(client, "get_job_status", job_id=job_id))[2][
                    "status"
                ] != "running":
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.2)

                os.killpg(orch.proc.pid, signal.SIGKILL)
                orch.stop()  # reaps it, closes its log
                errors = []
                for _ in range(3):  # threshold (2) failures open it; the third fails fast
                    error, text, _ = await call(client, "get_job_status", job_id=job_id)
                    assert error, text
                    errors.append(text)
                    error, text, _ = await call(
                        client, "qdrant_store", text="Kilns cool overnight."
                    )
                    assert not error, text
                    error, text, found = await call(client, "qdrant_find", query="kiln cooling")
                    assert not error and found["returned"] == 1, text
                assert "unreachable" in errors[0] and "SHIELD_ORCHESTRATOR_URL" in errors[0], errors
                assert "circuit breaker is now open" in errors[1], errors
                assert "circuit breaker is open" in errors[2] and "Retry in" in errors[2], errors
                assert breaker_state(server) == 1.0

                orch = orchestrator(port, orch_dir, tmp_path / "orchestrator-2.log", env)
                hold.set()
                # The breaker lets one trial call through after RECOVERY s; it closes it.
                deadline = time.monotonic() + HANG
                while True:
                    error, text, job = await call(client, "get_job_status", job_id=job_id)
                    if not error and job["status"] in {"succeeded", "failed"}:
                        break
                    assert time.monotonic() < deadline, text
                    await asyncio.sleep(0.5)
                assert breaker_state(server) == 0.0
    finally:
        server.stop()
        orch.stop()
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2, job  # its first run died with the orchestrator
