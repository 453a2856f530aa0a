"""The client snippets of docs/CLIENT_INTEGRATION.md and docs/ASYNC_JOB_PATTERN.md, run
against a real ``shield-mcp serve --transport http`` process.

Each Python and shell snippet runs in its own process against the server (which needs a
token; the job snippets use its embedded job API) and must print the lines the doc shows
under it; the LiteLLM proxy's
``mcp_servers`` entry is handed to the client class the proxy builds from it; the Claude
Desktop config starts a stdio server that the MCP SDK then talks to.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.api_reference import marked_blocks
from tests.support import REPO, SHIELD, ServerProcess, running_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # server processes

DOC = REPO / "docs" / "CLIENT_INTEGRATION.md"
JOBS_DOC = REPO / "docs" / "ASYNC_JOB_PATTERN.md"
DOC_URL = "http://127.0.0.1:8000"
TOKEN = "client-integration-token"
INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
# The snippet that stores the passage the others find.
SEED = "mcp-sdk"
SNIPPET_TIMEOUT = 180.0


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIELD_")}
    # LiteLLM fetches a price list from GitHub at import; offline that costs a DNS failure.
    env.update({"SHIELD_MCP_TOKEN": TOKEN, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    return env


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


BLOCKS = {**marked_blocks(DOC), **marked_blocks(JOBS_DOC)}
RUNNABLE = [
    name
    for (kind, name), (lang, _) in BLOCKS.items()
    if kind == "snippet" and lang in ("python", "sh")
]


def run_snippet(name: str, url: str) -> subprocess.CompletedProcess[str]:
    lang, text = BLOCKS[("snippet", name)]
    code = text.replace(DOC_URL, url)
    command = ["bash", "-c", code] if lang == "sh" else [sys.executable, "-c", code]
    return subprocess.run(
        command, env=_env(), capture_output=True, text=True, timeout=SNIPPET_TIMEOUT
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The server, holding the passage the snippets look for: the doc's own SDK snippet
    stored it (storing it again is harmless)."""
    base = tmp_path_factory.mktemp("client-integration")
    with running_server(base / "data", base / "server.log", SHIELD_MCP_TOKEN=TOKEN) as proc:
        seeded = run_snippet(SEED, proc.url)
        assert seeded.returncode == 0, seeded.stderr[-2000:]
        yield proc


def test_the_doc_has_runnable_snippets() -> None:
    assert SEED in RUNNABLE and "inspector" in RUNNABLE and "curl" in RUNNABLE
    assert len(RUNNABLE) >= 7


@pytest.mark.parametrize("name", RUNNABLE)
def test_the_snippet_prints_what_the_doc_shows(name: str, server: ServerProcess) -> None:
    if "npx " in BLOCKS[("snippet", name)][1] and shutil.which("npx") is None:
        from tests.conftest import REQUIRE_SERVICES

        message = f"npx is not installed: install Node.js 20 to run {INSPECTOR}"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    done = run_snippet(name, server.url)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = BLOCKS.get(("output", name))
    assert expected is not None, f"the doc shows no output for snippet {name!r}"
    printed = _lines(done.stdout)
    missing = [line for line in _lines(expected[1]) if line not in printed]
    assert missing == [], f"printed:\n{done.stdout}"


def test_the_litellm_proxy_entry_connects(server: ServerProcess) -> None:
    config = yaml.safe_load(BLOCKS[("snippet", "litellm-proxy")][1])
    entry = config["mcp_servers"]["shield"]
    secret = entry["auth_value"]
    assert secret.startswith("os.environ/")  # the proxy reads such values from its env
    # The proxy builds an MCPClient from an entry's keys (mcp_server_manager.py); so does
    # this, in a process of its own (LiteLLM's import changes logging and the environment).
    program = f"""
import asyncio, os
from litellm.experimental_mcp_client.client import MCPClient

async def main():
    client = MCPClient(
        server_url={entry["url"].replace(DOC_URL, server.url)!r},
        transport_type={entry["transport"]!r},
        auth_type={entry["auth_type"]!r},
        auth_value=os.environ[{secret.removeprefix("os.environ/")!r}],
    )
    print(sorted(tool.name for tool in await client.list_tools()))

asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", program],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=SNIPPET_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert _lines(done.stdout)[-1] == str(sorted(_tool_names()))


def _tool_names() -> list[str]:
    from mcp_server.app import ALL_TOOLS

    return list(ALL_TOOLS)


async def test_the_claude_desktop_config_starts_a_working_server(tmp_path: Path) -> None:
    config = json.loads(BLOCKS[("snippet", "claude-desktop")][1])
    entry = config["mcpServers"]["shield"]
    assert Path(entry["command"]).name == "shield-mcp"
    places = {  # the doc's example paths -> this test's
        entry["env"]["SHIELD_DATA_DIR"]: str(tmp_path / "data"),
        entry["env"]["SHIELD_INGEST_ROOTS"]: str(tmp_path / "docs"),
    }
    env = {key: places.get(value, value) for key, value in entry["env"].items()}
    # Claude Desktop passes a minimal environment plus the entry's env.
    env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    env["HOME"] = str(tmp_path)
    params = StdioServerParameters(command=SHIELD, args=entry["args"], env=env)
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        listed = await session.list_tools()
        assert sorted(tool.name for tool in listed.tools) == sorted(_tool_names())
        stored = await session.call_tool(
            "qdrant_store", {"text": "Claude Desktop was here.", "metadata": {"source": "x"}}
        )
        assert not stored.is_error, stored.content
    assert (tmp_path / "data").is_dir()  # the entry's SHIELD_DATA_DIR was used
