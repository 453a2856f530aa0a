"""A second server on a data dir already in use says why, in a way its client can show.

Regression: over stdio the server printed the reason to stderr and exited, so Claude
Desktop showed only "Connection closed".
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from knowledge.datadir import DataDirLock
from tests.support import SHIELD, free_port, server_env

pytestmark = pytest.mark.slow  # server processes

TOOLS = {
    "qdrant_store",
    "qdrant_find",
    "crawl_web",
    "ingest_doc",
    "get_job_status",
    "lightrag_query",
}


@pytest.fixture
def held(data_dir: Path) -> Iterator[Path]:
    """The data dir, locked as a running shield-mcp holds it."""
    lock = DataDirLock(data_dir)
    lock.acquire()
    try:
        yield data_dir
    finally:
        lock.release()


async def test_stdio_completes_the_handshake_and_answers_every_call_with_the_reason(
    held: Path,
) -> None:
    params = StdioServerParameters(command=SHIELD, args=["serve"], env=server_env(held))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        assert init.instructions is not None and "in use by another" in init.instructions
        assert {t.name for t in (await session.list_tools()).tools} == TOOLS
        for tool, args in (("qdrant_find", {"query": "x"}), ("get_job_status", {"job_id": "j"})):
            result = await session.call_tool(tool, args)
            assert result.is_error
            text = result.content[0].text  # type: ignore[union-attr]
            assert str(held) in text and "in use by another shield-mcp process" in text
            assert "SHIELD_DATA_DIR" in text and "Restart this server" in text


def test_http_still_exits_with_the_reason(held: Path) -> None:
    port = free_port()
    done = subprocess.run(
        [SHIELD, "serve", "--transport", "http", "--port", str(port)],
        env=server_env(held),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "in use by another shield-mcp process" in done.stderr
