"""A real ``shield-mcp serve --transport http`` subprocess, with the official ``mcp`` client."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.support import SHIELD, running_server, server_env

pytestmark = pytest.mark.slow  # each test starts a server process

TOKEN = "s3cret-token-for-tests"


@asynccontextmanager
async def http_session(url: str, token: str | None = None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def test_tools_over_streamable_http_without_auth(data_dir: Path, tmp_path: Path) -> None:
    with running_server(data_dir, tmp_path / "server.log") as server:
        async with http_session(server.url) as session:
            stored = await session.call_tool(
                "qdrant_store", {"text": "Deploys happen on Tuesdays.", "metadata": {"source": "x"}}
            )
            assert not stored.is_error
            found = await session.call_tool("qdrant_find", {"query": "when do we deploy?"})
            assert found.structured_content is not None
            assert found.structured_content["results"][0]["text"] == "Deploys happen on Tuesdays."
        assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
        # DNS rebinding: a page on another origin that resolves to 127.0.0.1 is refused.
        rebound = httpx.post(
            f"{server.url}/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={
                "Host": f"evil.example.com:{server.port}",
                "Origin": f"http://evil.example.com:{server.port}",
                "Accept": "application/json, text/event-stream",
            },
        )
        assert rebound.status_code in (403, 421), rebound.text
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'tool_calls_total{status="success",tool="qdrant_find"} 1.0' in metrics
        assert "tool_duration_seconds_bucket" in metrics


async def test_with_a_token_everything_but_health_needs_it(data_dir: Path, tmp_path: Path) -> None:
    with running_server(
        data_dir, tmp_path / "server.log", SHIELD_MCP_TOKEN=TOKEN, SHIELD_LOG_FORMAT="json"
    ) as server:
        assert httpx.get(f"{server.url}/health").status_code == 200
        for path in ("/metrics", "/mcp", "/jobs", "/ingest-async"):
            denied = httpx.post(f"{server.url}{path}", json={})
            assert denied.status_code == 401
            assert denied.headers["www-authenticate"].startswith("Bearer")
            assert "SHIELD_MCP_TOKEN" in denied.json()["message"]
        wrong = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        allowed = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200
        lower = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"bearer {TOKEN}"})
        assert lower.status_code == 200  # the auth scheme is case-insensitive
        # Every tool's series exists before its first call, so dashboards see zeros.
        for tool in ("qdrant_store", "qdrant_find"):
            for status in ("success", "error"):
                assert f'tool_calls_total{{status="{status}",tool="{tool}"}} 0.0' in allowed.text

        secret_text = "The vault combination is 4-8-15-16-23-42."
        async with http_session(server.url, TOKEN) as session:
            result = await session.call_tool("qdrant_store", {"text": secret_text})
            assert not result.is_error
            bad = await session.call_tool("qdrant_find", {"query": ""})
            assert bad.is_error
        log = server.log()
    # Logs are JSON lines with a request id per tool call, and never carry the token or
    # the stored text.
    assert TOKEN not in log and secret_text not in log
    tool_lines = [
        json.loads(line) for line in log.splitlines() if line.startswith("{") and '"tool"' in line
    ]
    assert tool_lines, log
    assert [(t["tool"], t["status"]) for t in tool_lines[-2:]] == [
        ("qdrant_store", "success"),
        ("qdrant_find", "error"),
    ]
    assert tool_lines[-1]["tool"] == "qdrant_find" and tool_lines[-1]["status"] == "error"
    assert len(tool_lines[-1]["request_id"]) == 12
    # A user's bad input is not an operator's alarm.
    levels = [json.loads(line)["level"] for line in log.splitlines() if line.startswith("{")]
    assert "ERROR" not in levels, log


def test_refuses_a_public_bind_without_a_token(data_dir: Path) -> None:
    done = subprocess.run(
        [SHIELD, "serve", "--transport", "http", "--host", "0.0.0.0", "--port", "1"],
        env=server_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "SHIELD_MCP_TOKEN" in done.stderr and "--allow-unauthenticated" in done.stderr


def test_bad_configuration_is_reported_without_a_traceback(data_dir: Path) -> None:
    done = subprocess.run(
        [SHIELD, "serve"],
        env=server_env(data_dir, SHIELD_MAX_LIMIT="lots"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "SHIELD_MAX_LIMIT" in done.stderr and "Traceback" not in done.stderr


async def test_oversize_request_bodies_are_refused_before_parsing(
    data_dir: Path, tmp_path: Path
) -> None:
    with running_server(
        data_dir,
        tmp_path / "server.log",
        SHIELD_MAX_REQUEST_BYTES="300000",  # the least that carries one 1 KiB upload
        SHIELD_MAX_UPLOAD_BYTES="1024",
    ) as server:
        big = httpx.post(
            f"{server.url}/mcp",
            content=b"x" * 400_000,
            headers={"content-type": "application/json"},
        )
        assert big.status_code == 413
        # A JSON-RPC error, so that MCP clients show its message.
        assert "SHIELD_MAX_REQUEST_BYTES" in big.json()["error"]["message"]
        async with http_session(server.url) as session:  # small requests still work
            result = await session.call_tool("qdrant_store", {"text": "small enough"})
            assert not result.is_error
