"""The client side, through the official MCP SDK (``mcp`` 2.x): streamable HTTP and stdio.

Every figure the suites take through MCP is a round trip seen by
``ClientSession.call_tool`` / ``list_tools``, the way an MCP client sees a server.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client


@dataclass
class Connected:
    session: ClientSession
    protocol_version: str
    server: str


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[Connected]:
    """An initialised MCP session over streamable HTTP."""
    async with (
        streamable_http_client(url) as (read, write),
        ClientSession(read, write) as session,
    ):
        init = await session.initialize()
        name = f"{init.server_info.name} {init.server_info.version}"
        yield Connected(session, init.protocol_version, name)


class ToolError(RuntimeError):
    pass


def texts(result: types.CallToolResult) -> list[str]:
    """The text parts of a tool's answer."""
    return [c.text for c in result.content if isinstance(c, types.TextContent)]


def structured(result: types.CallToolResult) -> dict[str, Any]:
    """A tool's structured answer (or its text parsed as JSON)."""
    data = result.structured_content
    if isinstance(data, dict):
        return data
    parsed: dict[str, Any] = json.loads(" ".join(texts(result)))
    return parsed


async def call(session: ClientSession, tool: str, args: dict[str, Any]) -> types.CallToolResult:
    """A tool call that must succeed (``ToolError`` otherwise)."""
    result = await session.call_tool(tool, args)
    if result.is_error:
        raise ToolError(f"{tool} failed: {' '.join(texts(result))[:500]}")
    return result


async def cold_start(
    argv: list[str], env: dict[str, str], log_path: Path, cwd: Path
) -> tuple[float, int]:
    """Seconds from spawning the server to the answer of ``tools/list`` over stdio."""
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=env, cwd=cwd)
    with log_path.open("a") as errlog:
        start = time.perf_counter()
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = await session.list_tools()
            elapsed = time.perf_counter() - start
    return elapsed, len(tools.tools)
