"""Calling the ingestion tools the way an assistant does, and waiting for their jobs."""

from __future__ import annotations

import time
from typing import Any

from fastmcp import Client

TERMINAL = {"succeeded", "failed", "cancelled"}


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert result.structured_content is not None
    return result.structured_content


async def error_of(client: Client, tool: str, **args: Any) -> str:
    result = await client.call_tool(tool, args, raise_on_error=False)
    assert result.is_error, result
    text = result.content[0].text  # type: ignore[union-attr]
    assert isinstance(text, str)
    return text


async def wait_for_job(client: Client, job_id: str, limit: float = 180.0) -> dict[str, Any]:
    """Polls get_job_status the way an assistant would, until the job ends."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status = await call(client, "get_job_status", job_id=job_id, wait_seconds=5)
        if status["status"] in TERMINAL:
            return status
    raise AssertionError(f"job {job_id} did not finish in {limit} s: {status}")
