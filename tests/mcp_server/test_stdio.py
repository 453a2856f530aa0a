"""A real ``shield-mcp serve`` over stdio, driven by the official ``mcp`` SDK client."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.support import SHIELD, server_env


@asynccontextmanager
async def stdio_session(
    data_dir: Path, *, stray: list[Exception] | None = None, **env: str
) -> AsyncIterator[ClientSession]:
    """``stray`` collects whatever the server wrote to stdout that is not an MCP message."""

    async def on_message(message: Any) -> None:
        if isinstance(message, Exception) and stray is not None:
            stray.append(message)

    params = StdioServerParameters(command=SHIELD, args=["serve"], env=server_env(data_dir, **env))
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write, message_handler=on_message) as session,
    ):
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, args: dict[str, Any]) -> Any:
    result = await session.call_tool(tool, args)
    assert not result.is_error, result.content
    return result.structured_content


@pytest.mark.slow
async def test_store_and_find_survive_a_restart(data_dir: Path) -> None:
    async with stdio_session(data_dir) as session:
        names = {t.name for t in (await session.list_tools()).tools}
        assert names == {
            "qdrant_store",
            "qdrant_find",
            "crawl_web",
            "ingest_doc",
            "get_job_status",
            "lightrag_query",
        }
        stored = await call(
            session,
            "qdrant_store",
            {
                "documents": [
                    {
                        "text": "The staging cluster lives in Frankfurt.",
                        "metadata": {"source": "infra"},
                    },
                    {"text": "Tea is in the second cupboard.", "metadata": {"source": "kitchen"}},
                ]
            },
        )
        assert stored["stored"] == 2
    # A new process on the same data dir sees what the first one stored.
    async with stdio_session(data_dir) as session:
        found = await call(
            session, "qdrant_find", {"query": "where is staging hosted?", "limit": 1}
        )
        assert found["results"][0]["text"] == "The staging cluster lives in Frankfurt."
        again = await call(
            session,
            "qdrant_store",
            {"text": "Tea is in the second cupboard.", "metadata": {"source": "kitchen"}},
        )
        assert again["ids"] == [stored["ids"][1]]
        everything = await call(session, "qdrant_find", {"query": "anything", "limit": 10})
        assert everything["returned"] == 2


@pytest.mark.slow
async def test_errors_come_back_as_tool_errors_and_the_server_keeps_serving(
    data_dir: Path,
) -> None:
    async with stdio_session(data_dir) as session:
        bad = await session.call_tool("qdrant_find", {"query": "x", "limit": 1000})
        assert bad.is_error
        assert "limit" in bad.content[0].text  # type: ignore[union-attr]
        ok = await session.call_tool("qdrant_store", {"text": "still here"})
        assert not ok.is_error


@pytest.mark.slow
async def test_a_second_server_on_the_same_data_dir_fails_at_start_and_says_why(
    data_dir: Path,
) -> None:
    async with stdio_session(data_dir):
        second = subprocess.run(
            [SHIELD, "serve"],
            env=server_env(data_dir),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert second.returncode == 2
    assert str(data_dir) in second.stderr
    assert "SHIELD_DATA_DIR" in second.stderr and "SHIELD_QDRANT_URL" in second.stderr


def test_cli_help_lists_the_serve_options() -> None:
    done = subprocess.run([SHIELD, "serve", "--help"], capture_output=True, text=True, check=True)
    for option in ("--transport", "--host", "--port"):
        assert option in done.stdout
